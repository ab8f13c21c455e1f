"""Tests of the topology-table lookup that names decay-tree classes in the outputs."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from pmse_graph.downstream.class_names import (
    SHORT_TREE_CHARACTERS,
    ClassNames,
    add_tree_columns,
    load_class_names,
    short_tree,
    topology_tables_beside,
)
from pmse_graph.errors import DataError
from tests.downstream.pretrained_run import TREES, write_topology


def test_tables_beside_input_files(tmp_path):
    with_table = write_topology(tmp_path / "sim" / "topology.csv")
    (tmp_path / "other").mkdir()
    files = [tmp_path / "sim" / "a.root", tmp_path / "sim" / "b.root", tmp_path / "other" / "c.root"]
    assert topology_tables_beside(files) == [str(with_table.resolve())]


def test_short_tree_cuts_head_and_tail():
    assert short_tree("J/psi --> e+ e-") == "e+ e-"
    long_tree = "J/psi --> " + " ".join(["pi+ pi-"] * 20)
    short = short_tree(long_tree)
    assert len(short) == SHORT_TREE_CHARACTERS
    assert short.endswith("...")


def test_class_names_from_table(tmp_path):
    names = ClassNames.read(write_topology(tmp_path / "topology.csv"))
    assert names.tree(3) == TREES[3]
    assert names.tree(99) == ""
    assert names.label(5) == "e+ e-"
    assert names.label(99) == "class 99"


def test_explicit_table_must_exist(tmp_path):
    table = write_topology(tmp_path / "topology.csv")
    assert load_class_names(table, {"topology_tables": [str(tmp_path / "gone.csv")]}).source == str(table)
    with pytest.raises(DataError, match="Topology table not found"):
        load_class_names(tmp_path / "missing.csv")


def test_recorded_table_is_the_default(tmp_path, caplog):
    table = write_topology(tmp_path / "topology.csv")
    assert load_class_names(None, {"topology_tables": [str(table)]}).tree(0) == TREES[0]
    assert load_class_names(None, {}) is None
    with caplog.at_level(logging.INFO):
        assert load_class_names(None, {"topology_tables": [str(tmp_path / "gone.csv")]}) is None
    assert "no longer exists" in caplog.text


def test_tree_columns_follow_ids(tmp_path):
    names = ClassNames.read(write_topology(tmp_path / "topology.csv"))
    table = pd.DataFrame({"true_class": [0, 1], "predicted_class": [1, 42], "share": [0.9, 0.1]})
    named = add_tree_columns(table, names, {"true_class": "true_tree", "predicted_class": "predicted_tree"})
    assert list(named.columns) == ["true_class", "true_tree", "predicted_class", "predicted_tree", "share"]
    assert named["true_tree"].tolist() == [TREES[0], TREES[1]]
    assert named["predicted_tree"].tolist() == [TREES[1], ""]
    assert add_tree_columns(table, None, {"true_class": "true_tree"}) is table
    with pytest.raises(DataError, match="Column 'class_id' not found"):
        add_tree_columns(table, names, {"class_id": "tree"})
