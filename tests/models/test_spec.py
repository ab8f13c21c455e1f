"""ModelInputSpec: construction from a schema-like object and its checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pmse_graph.errors import ConfigError
from pmse_graph.models import ModelInputSpec


def test_spec_from_schema_reads_attributes():
    schema = SimpleNamespace(
        num_node_features=7,
        categorical_cardinalities=[3, 6],
        categorical_names=["charge", "pid_type"],
        num_edge_features=5,
        feature_groups={"track": [0, 1, 2], "shower": [3, 4]},
        num_conditions=4,
    )

    spec = ModelInputSpec.from_schema(schema)

    assert spec.num_node_features == 7
    assert spec.categorical_cardinalities == (3, 6)
    assert spec.num_categorical == 2
    assert spec.categorical_names == ("charge", "pid_type")
    assert spec.num_edge_features == 5
    assert spec.feature_groups == {"track": (0, 1, 2), "shower": (3, 4)}
    assert spec.num_conditions == 4


def test_spec_from_schema_defaults_optional_fields():
    schema = SimpleNamespace(num_node_features=3, categorical_cardinalities=[2], num_edge_features=1)

    spec = ModelInputSpec.from_schema(schema)

    assert spec.num_conditions == 4
    assert spec.feature_groups == {}
    assert spec.categorical_names == ("categorical_0",)


def test_spec_from_schema_missing_attribute():
    with pytest.raises(ConfigError, match="num_edge_features"):
        ModelInputSpec.from_schema(SimpleNamespace(num_node_features=3, categorical_cardinalities=[2]))


def test_spec_rejects_group_outside_columns():
    with pytest.raises(ConfigError, match="'shower' lists columns \\[5\\]"):
        ModelInputSpec(num_node_features=4, categorical_cardinalities=(2,), num_edge_features=1, feature_groups={"shower": (3, 5)})


def test_spec_rejects_empty_category():
    with pytest.raises(ConfigError, match="at least one category"):
        ModelInputSpec(num_node_features=4, categorical_cardinalities=(0,), num_edge_features=1)
