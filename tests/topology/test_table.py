"""Tests of the ranked topology table, including the comparison with TopoAna's own output."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pandas as pd
import pytest

from pmse_graph.errors import ConfigError, DataError
from pmse_graph.topology.names import ParticleNames
from pmse_graph.topology.table import CSV_COLUMNS, TopologyCounter, TopologyTable, topoana_rank_order
from pmse_graph.topology.tree import label_events

# TopoAna's reference output was written with a particle table that spells these nine
# codes differently from pidtable_BESIII.dat; the default names follow the output.
REFERENCE_OUTPUT_NAMES = {
    229: "f(4)(2050)",
    10111: "a(0)(1450)0",
    10211: "a(0)(1450)+",
    -10211: "a(0)(1450)-",
    10221: "f_0(1370)",
    10331: "f(0)(1710)",
    10335: "eta(2)(1870)",
    50221: "f_0(2020)",
    9050225: "f(2)(1950)",
}


def exchange_sort_order(counts: list[int]) -> list[int]:
    """TopoAna's quadratic exchange sort, written out as the reference."""
    values, order = list(counts), list(range(len(counts)))
    for i in range(len(values) - 1):
        for j in range(i + 1, len(values)):
            if values[i] < values[j]:
                values[i], values[j] = values[j], values[i]
                order[i], order[j] = order[j], order[i]
    return order


@pytest.mark.parametrize("seed", range(20))
def test_rank_order_matches_exchange_sort(seed: int):
    rng = np.random.default_rng(seed)
    counts = rng.choice([1, 1, 1, 2, 2, 3, 5, 8, 13], size=int(rng.integers(0, 60))) if seed % 2 else rng.integers(1, 7, 45)
    assert topoana_rank_order(np.asarray(counts)).tolist() == exchange_sort_order(list(counts))


def test_from_labels_ids_point_to_rows():
    tree = np.array(["a", "b", "b", "c", "c", "c", "d"], dtype=object)
    final = np.array(["x", "y", "y", "x", "x", "x", "z"], dtype=object)
    table = TopologyTable.from_labels(tree, final)
    frame = table.to_frame()
    assert frame["tree"].tolist() == ["c", "b", "a", "d"]
    assert frame["count"].tolist() == [3, 2, 1, 1]
    assert frame["cumulative_count"].tolist() == [3, 5, 6, 7]
    assert frame["tree"].to_numpy()[table.tree_id].tolist() == tree.tolist()
    # final state x has 4 events, y 2, z 1
    assert table.final_state_id.tolist() == [0, 1, 1, 0, 0, 0, 2]
    assert frame["final_state_id"].tolist() == [0, 1, 0, 2]


def test_first_seen_tie_order_is_stable():
    tree = np.array(["a", "b", "c", "c"], dtype=object)
    table = TopologyTable.from_labels(tree, tree, tie_order="first_seen")
    assert table.to_frame()["tree"].tolist() == ["c", "a", "b"]
    # TopoAna's exchange sort swaps "a" with "c", which puts "a" behind "b"
    assert TopologyTable.from_labels(tree, tree).to_frame()["tree"].tolist() == ["c", "b", "a"]


def test_unknown_tie_order_rejected():
    with pytest.raises(ConfigError, match="Expected tie_order to be one of"):
        TopologyTable.from_labels(np.array(["a"], dtype=object), np.array(["x"], dtype=object), tie_order="random")


def test_one_tree_with_two_final_states_rejected():
    with pytest.raises(DataError, match="two final states"):
        TopologyTable.from_labels(np.array(["a", "a"], dtype=object), np.array(["x", "y"], dtype=object))


def test_counter_over_chunks_equals_one_pass(truth_arrays):
    sample = truth_arrays[:6000]
    labels = label_events(sample.Pid, sample.Midx)
    whole = TopologyTable.from_labels(labels.tree, labels.final_state).to_frame()
    counter = TopologyCounter()
    for start in range(0, 6000, 1700):
        counter.add(labels.tree[start : start + 1700], labels.final_state[start : start + 1700])
    pd.testing.assert_frame_equal(counter.to_table().to_frame(), whole)


def test_csv_round_trip(tmp_path):
    table = TopologyTable.from_labels(
        np.array(["J/psi --> pi0 pi+ pi-", "J/psi --> e+ e-", "J/psi --> e+ e-"], dtype=object),
        np.array(["J/psi ---> pi0 pi+ pi-", "J/psi ---> e+ e-", "J/psi ---> e+ e-"], dtype=object),
    )
    path = tmp_path / "out" / "topology.csv"
    table.write_csv(path)
    assert sorted(item.name for item in path.parent.iterdir()) == ["topology.csv"]
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    pd.testing.assert_frame_equal(TopologyTable.read_csv(path).to_frame(), table.to_frame())


def test_read_csv_missing_column(tmp_path):
    path = tmp_path / "topology.csv"
    path.write_text("id,tree,count\n0,J/psi --> e+ e-,3\n")
    with pytest.raises(DataError, match="lacks the columns"):
        TopologyTable.read_csv(path)


def reference_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [row.rank - 1 for row in rows],
            "tree": [row.tree for row in rows],
            "final_state": [row.final_state for row in rows],
            "count": [row.count for row in rows],
            "first_seen": [row.first_seen for row in rows],
        }
    )


def test_reproduces_topoana_output(truth_arrays, reference_rows):
    # default names, no patch: the shipped labels are TopoAna's strings
    labels = label_events(truth_arrays.Pid, truth_arrays.Midx)
    frame = TopologyTable.from_labels(labels.tree, labels.final_state).to_frame()

    expected = reference_frame(reference_rows)
    assert len(expected) == 17424
    assert expected["count"].sum() == 100_000
    # same trees, counts, final states, rank order and first-seen numbering
    pd.testing.assert_frame_equal(frame[expected.columns], expected)


def test_pid_table_same_partition(truth_arrays, reference_rows, topoana_dir):
    with_table = label_events(
        truth_arrays.Pid, truth_arrays.Midx, names=ParticleNames.from_pid_table(topoana_dir / "pidtable_BESIII.dat")
    )
    default = label_events(truth_arrays.Pid, truth_arrays.Midx)
    table_ids = TopologyTable.from_labels(with_table.tree, with_table.final_state).tree_id
    default_ids = TopologyTable.from_labels(default.tree, default.final_state).tree_id

    # ranked ids agree event by event, so classes and counts are the same
    np.testing.assert_array_equal(default_ids, table_ids)
    assert np.bincount(table_ids).tolist() == [row.count for row in reference_rows]
    # the strings differ only where pidtable_BESIII.dat spells one of the nine codes differently
    table_names = ParticleNames.from_pid_table(topoana_dir / "pidtable_BESIII.dat")
    differs = np.flatnonzero(default.tree != with_table.tree)
    assert differs.size > 0
    for event in differs[:200].tolist():
        codes = set(ak.to_list(truth_arrays.Pid[event]))
        assert any(table_names.name(code) != name for code, name in REFERENCE_OUTPUT_NAMES.items() if code in codes), event
    assert np.array_equal(default.tree[default.tree == with_table.tree], with_table.tree[default.tree == with_table.tree])
