"""Tests of the chunked generation loop: determinism, labels in files and table, file layout."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from pmse_graph.simulation.decay_model import DecayModel
from pmse_graph.simulation.detector import DetectorResponse
from pmse_graph.simulation.generator import SimulationConfig, simulate
from pmse_graph.topology.tree import label_events
from pmse_graph.simulation.writer import TREE_NAME

NUM_EVENTS = 3000


@pytest.fixture(scope="module")
def model() -> DecayModel:
    return DecayModel.from_dec_file()


@pytest.fixture(scope="module")
def response() -> DetectorResponse:
    return DetectorResponse.from_config()


def run(model: DecayModel, response: DetectorResponse, out_dir: Path, *, seed: int):
    config = SimulationConfig(num_events=NUM_EVENTS, seed=seed, events_per_file=1200, chunk_size=1000)
    return simulate(model=model, response=response, config=config, out_dir=out_dir, progress=False)


@pytest.fixture(scope="module")
def first_run(model: DecayModel, response: DetectorResponse, tmp_path_factory: pytest.TempPathFactory):
    return run(model, response, tmp_path_factory.mktemp("first"), seed=5)


def read_all(paths: list[Path]) -> ak.Array:
    return ak.concatenate([uproot.open(path)[TREE_NAME].arrays() for path in paths])


def test_files_split_by_events_per_file(first_run) -> None:
    sizes = [uproot.open(path)[TREE_NAME].num_entries for path in first_run.paths]

    assert sizes == [1200, 1200, 600]
    events = read_all(first_run.paths)
    np.testing.assert_array_equal(ak.to_numpy(events["event"]), np.arange(NUM_EVENTS))
    assert set(ak.to_numpy(events["run"]).tolist()) == {5}


def test_same_seed_gives_identical_files(first_run, model, response, tmp_path: Path) -> None:
    again = run(model, response, tmp_path / "again", seed=5)
    first = read_all(first_run.paths)
    second = read_all(again.paths)

    assert first.fields == second.fields
    for name in first.fields:
        assert ak.all(first[name] == second[name]), name
    assert first_run.topology_path.read_text() == again.topology_path.read_text()


def test_other_seed_gives_other_events(first_run, model, response, tmp_path: Path) -> None:
    other = run(model, response, tmp_path / "other", seed=6)
    first = read_all(first_run.paths)
    second = read_all(other.paths)

    assert not ak.all(ak.num(first["Pid"]) == ak.num(second["Pid"]))


def test_topology_table_matches_file_labels(first_run) -> None:
    table = pd.read_csv(first_run.topology_path, keep_default_na=False)
    events = read_all(first_run.paths)
    tree_id = ak.to_numpy(events["topo_tree_id"])
    fs_id = ak.to_numpy(events["topo_fs_id"])

    assert "count" in table.columns
    assert table["count"].sum() == NUM_EVENTS
    assert (np.diff(table["count"].to_numpy()) <= 0).all()
    np.testing.assert_array_equal(np.bincount(tree_id, minlength=len(table)), table["count"].to_numpy())

    # relabelling the written truth gives each event the tree and final state of its ids
    labels = label_events(events["Pid"], events["Midx"])
    np.testing.assert_array_equal(labels.tree, table["tree"].to_numpy()[tree_id])
    final_state_of_id = dict(zip(table["final_state_id"], table["final_state"]))
    assert all(final_state_of_id[i] == state for i, state in zip(fs_id, labels.final_state))


def test_summary_reports_the_run(first_run) -> None:
    assert first_run.num_events == NUM_EVENTS
    assert len(first_run.table) > 100
    assert 0.0 < first_run.phase_space_efficiency <= 1.0
    assert first_run.seconds > 0
    assert set(first_run.stage_seconds) == {"templates", "labels", "kinematics", "detector", "write"}


def test_reconstructed_counts_are_consistent(first_run) -> None:
    events = read_all(first_run.paths)
    num_charged = ak.to_numpy(events["nCharged"])
    charge = events["q"]

    np.testing.assert_array_equal(ak.to_numpy(events["nTracks"]), num_charged + ak.to_numpy(events["nNeutral"]))
    np.testing.assert_array_equal(ak.to_numpy(ak.sum(charge != 0, axis=1)), num_charged)
    assert (ak.to_numpy(events["nGoodCharged"]) <= num_charged).all()
