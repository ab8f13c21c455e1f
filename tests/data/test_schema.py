"""Tests of schema loading and the sizes derived from it."""

from __future__ import annotations

import pytest

from pmse_graph.data.schema import load_schema
from pmse_graph.errors import ConfigError


def test_besiii_schema_sizes():
    schema = load_schema("besiii")
    assert schema.tree == "evt"
    assert schema.num_conditions == 4
    assert schema.categorical_names == ["q", "pid_prob_type"]
    assert schema.categorical_cardinalities == [4, 6]
    assert schema.num_edge_features == 8
    assert schema.num_node_features == len(schema.node_feature_names) == 22 + 3
    assert schema.node_feature_names[-3:] == ["kinematics_present", "emc_present", "muc_present"]


def test_besiii_feature_groups_cover_x():
    schema = load_schema("besiii")
    columns = sorted(column for group in schema.feature_groups.values() for column in group)
    assert columns == list(range(schema.num_node_features))
    assert schema.node_feature_names[schema.feature_groups["emc"][-1]] == "emc_present"
    assert "pid" not in schema.feature_groups


def test_hzz_schema_sizes():
    schema = load_schema("hzz")
    assert [collection.name for collection in schema.collections] == ["muon", "electron", "photon", "jet"]
    assert schema.num_edge_features == 5
    assert schema.node_feature_names == ["px", "py", "pz", "energy", "iso", "btag", "isolation_present", "jet_present"]


def test_unknown_schema_name():
    with pytest.raises(ConfigError, match="Unknown schema 'belle'"):
        load_schema("belle")


def test_schema_unknown_key_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text((load_schema.__globals__["SCHEMA_DIR"] / "hzz.yaml").read_text() + "colour: red\n")
    with pytest.raises(ConfigError, match="colour: unknown key"):
        load_schema(path)


def test_schema_feature_with_unknown_group(tmp_path):
    text = (load_schema.__globals__["SCHEMA_DIR"] / "hzz.yaml").read_text().replace("group: jet", "group: jets")
    path = tmp_path / "bad_group.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="unknown group 'jets'"):
        load_schema(path)
