"""Tests of ``pmse-graph topology`` through the typer runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from pmse_graph.cli.main import app

runner = CliRunner()


def test_topology_real_files(shared_data: Path, tmp_path: Path):
    topoana = shared_data / "topoana"
    result = runner.invoke(
        app,
        [
            "topology", str(topoana / "jpsi1.root"), str(topoana / "jpsi2.root"),
            "--tree", "evt", "--pid", "Pid", "--mother", "Midx",
            "--pid-table", str(topoana / "pidtable_BESIII.dat"), "--top", "3", "--out", str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "100000 events, 17424 decay trees" in result.output
    assert "J/psi --> mu+ mu-" in result.output
    assert "J/psi --> pi0 pi+ pi+ pi- pi-" in result.output
    # --top 3 prints three trees, the fourth most frequent is only in the file
    assert "J/psi --> pi0 pi+ pi+ pi+ pi- pi- pi-\n" not in result.output

    frame = pd.read_csv(tmp_path / "topology.csv", keep_default_na=False)
    assert len(frame) == 17424
    assert frame["count"].sum() == 100_000
    assert frame.loc[0, ["tree", "count"]].tolist() == ["J/psi --> mu+ mu-", 5269]


def test_topology_missing_branch_is_one_line(shared_data: Path, tmp_path: Path):
    result = runner.invoke(
        app,
        [
            "topology", str(shared_data / "topoana" / "jpsi1.root"),
            "--tree", "evt", "--pid", "Pid", "--mother", "Midy", "--out", str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "Branch 'Midy' not found in tree 'evt'" in result.output
    assert "nearest names: ['Midx'" in result.output
    assert not (tmp_path / "topology.csv").exists()
