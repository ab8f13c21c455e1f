"""Tests of reading MC-truth ROOT files into a topology table."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import pytest
import uproot

from pmse_graph.errors import DataError
from pmse_graph.topology.reader import count_topologies

MUMU = ([443, 13, -13], [-1, 0, 0])
RHO_PI = ([443, 211, 113, -211, 211], [-1, 0, 0, 2, 2])
THREE_PI = ([443, 111, 211, -211, 22, 22], [-1, 0, 0, 0, 1, 1])


def write_truth(path: Path, events: list[tuple[list[int], list[int]]], *, tree: str = "truth") -> Path:
    """Write events as jagged ``pdg`` and ``mother`` branches of ``tree``."""
    branches = {
        "pdg": ak.values_astype(ak.Array([pdg for pdg, _ in events]), "int32"),
        "mother": ak.values_astype(ak.Array([mother for _, mother in events]), "int32"),
    }
    with uproot.recreate(path) as output:
        output.mktree(tree, {name: "var * int32" for name in branches})
        output[tree].extend(branches)
    return path


def test_counts_over_files_and_chunks(tmp_path: Path):
    first = write_truth(tmp_path / "a.root", [MUMU, RHO_PI, MUMU, THREE_PI, MUMU])
    second = write_truth(tmp_path / "b.root", [RHO_PI, RHO_PI, THREE_PI])
    table = count_topologies(
        [first, second], tree_name="truth", pid_branch="pdg", mother_branch="mother", step_size=2, progress=False
    )
    frame = table.to_frame()
    # mu mu: 3, rho pi: 3 (first seen later, so second), 3 pi: 2
    assert frame["tree"].tolist() == ["J/psi --> mu+ mu-", "J/psi --> rho0 pi+; rho0 --> pi+ pi-", "J/psi --> pi0 pi+ pi-"]
    assert frame["count"].tolist() == [3, 3, 2]
    assert frame["final_state"].tolist() == ["J/psi ---> mu+ mu-", "J/psi ---> pi+ pi+ pi-", "J/psi ---> pi0 pi+ pi-"]
    assert table.num_events == 8


def test_real_file_chunked_like_whole(topoana_dir: Path):
    whole = count_topologies([topoana_dir / "jpsi1.root"], tree_name="evt", pid_branch="Pid", mother_branch="Midx", progress=False)
    chunked = count_topologies(
        [topoana_dir / "jpsi1.root"], tree_name="evt", pid_branch="Pid", mother_branch="Midx", step_size=7000, progress=False
    )
    assert whole.num_events == 50_000
    assert chunked.to_frame().equals(whole.to_frame())


def test_missing_file(tmp_path: Path):
    with pytest.raises(DataError, match="Input file not found: .*nothing.root"):
        count_topologies([tmp_path / "nothing.root"], tree_name="evt", pid_branch="Pid", mother_branch="Midx")


def test_missing_tree_lists_trees(tmp_path: Path):
    path = write_truth(tmp_path / "a.root", [MUMU])
    with pytest.raises(DataError, match=r"Tree 'evt' not found in .*a.root; trees found: \['truth'\]"):
        count_topologies([path], tree_name="evt", pid_branch="pdg", mother_branch="mother")


def test_missing_branch_names_nearest(tmp_path: Path):
    path = write_truth(tmp_path / "a.root", [MUMU])
    with pytest.raises(DataError, match=r"Branch 'Mother' not found in tree 'truth' of .*a.root; nearest names: \['mother'"):
        count_topologies([path], tree_name="truth", pid_branch="pdg", mother_branch="Mother")


def test_bad_record_names_file_and_entry(tmp_path: Path):
    path = write_truth(tmp_path / "a.root", [MUMU, MUMU, MUMU, ([443, 211, -211], [-1, 0, 5])])
    with pytest.raises(DataError, match=r"a.root, tree 'truth', entry 3: Mother index 5 of particle 2"):
        count_topologies([path], tree_name="truth", pid_branch="pdg", mother_branch="mother", step_size=2, progress=False)
