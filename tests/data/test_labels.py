"""Tests of the label map that merges the class ids of several ``simulate`` runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.data.ntuple_writer import three_events, write_besiii
from pmse_graph.data.dataset import DataConfig, EventDataset
from pmse_graph.data.labels import LABEL_MAP_FILE, LabelMap, check_label_tables
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.data.summary import summarize_files
from pmse_graph.errors import DataError

# (tree, final state, count) ranked most frequent first, as one simulate run writes them
RUN_A = [("J/psi --> pi+ pi- pi0", "pi+ pi- pi0", 50), ("J/psi --> e+ e-", "e+ e-", 30), ("J/psi --> mu+ mu-", "mu+ mu-", 20)]
RUN_B = [("J/psi --> e+ e-", "e+ e-", 40), ("J/psi --> rho0 pi0", "pi+ pi- pi0", 35), ("J/psi --> pi+ pi- pi0", "pi+ pi- pi0", 5)]


def write_table(folder, rows):
    states = list(dict.fromkeys(state for _, state, _ in rows))
    counts = [count for _, _, count in rows]
    pd.DataFrame({
        "id": range(len(rows)), "tree": [tree for tree, _, _ in rows], "final_state": [state for _, state, _ in rows],
        "count": counts, "cumulative_count": np.cumsum(counts), "final_state_id": [states.index(s) for _, s, _ in rows],
        "first_seen": range(len(rows)),
    }).to_csv(folder / "topology.csv", index=False)


@pytest.fixture()
def two_runs(tmp_path):
    paths = []
    for name, rows in (("run_a", RUN_A), ("run_b", RUN_B)):
        folder = tmp_path / name
        folder.mkdir()
        write_table(folder, rows)
        # topo_tree_id is 0, 1, 2 and topo_fs_id is 0, 1, 0 in the three events
        paths.append(write_besiii(folder / "events.root", three_events()))
    return paths


@pytest.fixture(scope="module")
def schema():
    return load_schema("besiii")


def test_conflicting_runs_raise_naming_both_tables(two_runs, schema):
    with pytest.raises(DataError, match=r"id 0 is 'J/psi --> pi\+ pi- pi0' in .*run_a/topology.csv but "
                                        r"'J/psi --> e\+ e-' in .*run_b/topology.csv"):
        list(iterate_chunks(two_runs, schema))
    with pytest.raises(DataError, match="LabelMap"):
        check_label_tables([str(path) for path in two_runs])
    # one run alone reads as before
    (chunk,) = list(iterate_chunks(two_runs[0], schema))
    assert chunk.y.tolist() == [0, 1, 2]


def test_label_map_gives_one_id_space(two_runs, schema, tmp_path):
    label_map = LabelMap.from_sources([str(path) for path in two_runs])
    # merged counts: e+e- 70, pi+pi-pi0 55, rho0 pi0 35, mu+mu- 20
    assert label_map.trees == ["J/psi --> e+ e-", "J/psi --> pi+ pi- pi0", "J/psi --> rho0 pi0", "J/psi --> mu+ mu-"]
    assert label_map.final_states == ["pi+ pi- pi0", "e+ e-", "mu+ mu-"]
    chunks = list(iterate_chunks(two_runs, schema, label_map=label_map))
    trees = [[label_map.trees[i] for i in chunk.y] for chunk in chunks]
    assert trees[0] == [tree for tree, _, _ in RUN_A]
    assert trees[1] == [tree for tree, _, _ in RUN_B]
    # topo_fs_id 0, 1, 0 name each run's first and second final state
    assert [label_map.final_states[i] for i in chunks[0].y_fs] == ["pi+ pi- pi0", "e+ e-", "pi+ pi- pi0"]
    assert [label_map.final_states[i] for i in chunks[1].y_fs] == ["e+ e-", "pi+ pi- pi0", "e+ e-"]

    saved = tmp_path / LABEL_MAP_FILE
    label_map.save(saved)
    loaded = LabelMap.load(saved)
    assert loaded.trees == label_map.trees
    standardizer = Standardizer.from_schema(schema).fit(chunks)
    dataset = EventDataset(two_runs, schema, standardizer, split="all", shuffle_buffer=0, label_map=loaded)
    (batch,) = list(dataset)
    assert batch.y.tolist() == [chunk_y for chunk in chunks for chunk_y in chunk.y.tolist()]
    config = DataConfig(files=[str(path) for path in two_runs], shuffle_buffer=0, label_map=str(saved))
    (from_config,) = list(EventDataset.from_config(config, schema, standardizer, split="all"))
    assert from_config.y.tolist() == batch.y.tolist()


def test_ids_missing_from_the_table_raise(tmp_path, schema):
    folder = tmp_path / "short"
    folder.mkdir()
    write_table(folder, RUN_A[:2])
    path = write_besiii(folder / "events.root", three_events())
    label_map = LabelMap.from_sources([str(path)])
    with pytest.raises(DataError, match="tree id 2 is not in"):
        list(iterate_chunks(path, schema, label_map=label_map))
    with pytest.raises(DataError, match="No topology.csv beside"):
        LabelMap.from_sources([str(write_besiii(tmp_path / "alone.root", three_events()))])


def test_summary_names_conflicting_runs(two_runs, schema):
    summaries = summarize_files([str(path) for path in two_runs], schema)
    for summary in summaries:
        assert summary.usable
        assert any("id 0 is 'J/psi --> pi+ pi- pi0'" in problem for problem in summary.problems), summary.problems
