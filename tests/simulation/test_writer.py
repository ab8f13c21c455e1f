"""Tests of the ROOT ntuple writer: branch contract, file splitting, atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import uproot

from pmse_graph.errors import DataError
from pmse_graph.simulation.writer import EVENT_BRANCHES, TRACK_BRANCHES, TREE_NAME, NtupleWriter

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_chunk(num_events: int, first_event: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    num_tracks = rng.integers(0, 8, num_events)
    num_truth = rng.integers(3, 12, num_events)
    event_branches = {name: rng.integers(0, 100, num_events) for name in EVENT_BRANCHES}
    event_branches["event"] = np.arange(first_event, first_event + num_events)
    track_branches = {name: rng.normal(size=num_tracks.sum()) for name in TRACK_BRANCHES}
    for name, dtype in TRACK_BRANCHES.items():
        if dtype is np.int32:
            track_branches[name] = rng.integers(-1, 5, num_tracks.sum())
    return {
        "event_branches": event_branches,
        "track_branches": track_branches,
        "num_tracks": num_tracks,
        "pid": rng.integers(-300, 300, num_truth.sum()),
        "midx": rng.integers(-1, 10, num_truth.sum()),
        "num_truth": num_truth,
    }


def documented_branches() -> set[str]:
    """Return the branch names of the tables in docs/ntuple_format.md (first cell with names per row)."""
    names: set[str] = set()
    for line in (REPO_ROOT / "docs" / "ntuple_format.md").read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell for cell in line.split("|") if "`" in cell]
        if cells:
            names.update(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cells[0]))
    return names


def test_branches_match_documented_format() -> None:
    written = set(EVENT_BRANCHES) | set(TRACK_BRANCHES) | {"nTracks", "Nmcps", "Pid", "Midx"}

    assert written == documented_branches()


def test_chunks_round_trip_across_files(tmp_path: Path) -> None:
    chunks = [make_chunk(700, 0, 1), make_chunk(900, 700, 2)]
    with NtupleWriter(out_dir=tmp_path, events_per_file=600, prefix="sim") as writer:
        for chunk in chunks:
            writer.write(**chunk)

    assert [path.name for path in writer.paths] == ["sim_0000.root", "sim_0001.root", "sim_0002.root"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sim_0000.root", "sim_0001.root", "sim_0002.root"]
    arrays = [uproot.open(path)[TREE_NAME].arrays(library="np") for path in writer.paths]
    assert [len(a["event"]) for a in arrays] == [600, 600, 400]

    events = np.concatenate([a["event"] for a in arrays])
    np.testing.assert_array_equal(events, np.arange(1600))
    num_tracks = np.concatenate([a["nTracks"] for a in arrays])
    expected_tracks = np.concatenate([chunk["num_tracks"] for chunk in chunks])
    np.testing.assert_array_equal(num_tracks, expected_tracks)
    energy = np.concatenate([np.concatenate(list(a["emc_energy"])) for a in arrays])
    expected_energy = np.concatenate([chunk["track_branches"]["emc_energy"] for chunk in chunks]).astype(np.float32)
    np.testing.assert_array_equal(energy, expected_energy)
    pid = np.concatenate([np.concatenate(list(a["Pid"])) for a in arrays])
    np.testing.assert_array_equal(pid, np.concatenate([chunk["pid"] for chunk in chunks]))
    np.testing.assert_array_equal(np.concatenate([a["Nmcps"] for a in arrays]), np.concatenate([c["num_truth"] for c in chunks]))


def test_branch_types(tmp_path: Path) -> None:
    with NtupleWriter(out_dir=tmp_path) as writer:
        writer.write(**make_chunk(50, 0, 3))
    tree = uproot.open(writer.paths[0])[TREE_NAME]

    assert tree["event"].interpretation.from_dtype.kind == "i"
    assert tree["event"].interpretation.from_dtype.itemsize == 8
    assert tree["nTracks"].interpretation.from_dtype.itemsize == 4
    assert tree["q"].interpretation.content.from_dtype.kind == "i"
    assert tree["mdc_p3_px"].interpretation.content.from_dtype.kind == "f"
    assert tree["Midx"].interpretation.content.from_dtype.itemsize == 4


def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with NtupleWriter(out_dir=tmp_path, events_per_file=100) as writer:
            writer.write(**make_chunk(150, 0, 4))
            assert (tmp_path / ".jpsi_inclusive_0001.root.tmp").exists()
            assert not (tmp_path / "jpsi_inclusive_0001.root").exists()
            raise RuntimeError("interrupted")

    assert sorted(path.name for path in tmp_path.iterdir()) == ["jpsi_inclusive_0000.root"]


def test_missing_branch_raises(tmp_path: Path) -> None:
    chunk = make_chunk(10, 0, 5)
    del chunk["track_branches"]["EoP"]
    with NtupleWriter(out_dir=tmp_path) as writer:
        with pytest.raises(DataError, match="EoP"):
            writer.write(**chunk)


def test_wrong_branch_length_raises(tmp_path: Path) -> None:
    chunk = make_chunk(10, 0, 6)
    chunk["track_branches"]["q"] = chunk["track_branches"]["q"][:-1]
    with NtupleWriter(out_dir=tmp_path) as writer:
        with pytest.raises(DataError, match="'q'"):
            writer.write(**chunk)
