"""Tests of ``pmse-graph simulate`` through the typer runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import uproot
from typer.testing import CliRunner

from pmse_graph.cli.main import app

runner = CliRunner()


def test_simulate_writes_files_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        ["simulate", "--events", "600", "--seed", "2", "--out", str(out), "--events-per-file", "250", "--chunk-size", "200", "--no-progress"],
    )

    assert result.exit_code == 0, result.output
    assert "600 events in 3 ROOT files" in result.output
    assert "decay-tree classes" in result.output
    assert "events/s" in result.output
    roots = sorted(out.glob("*.root"))
    assert [uproot.open(path)["evt"].num_entries for path in roots] == [250, 250, 100]
    table = pd.read_csv(out / "topology.csv", keep_default_na=False)
    assert table["count"].sum() == 600
    assert "num_events: 600" in (out / "simulate_config.yaml").read_text()


def test_simulate_from_truth_trees(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "truth"
    result = runner.invoke(
        app,
        [
            "simulate", "--events", "400", "--seed", "4", "--out", str(out), "--no-progress",
            "--truth-trees", str(shared_data / "topoana" / "jpsi1.root"),
            "--particle-table", str(shared_data / "decay" / "pdt.table"),
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    events = uproot.open(out / "jpsi_inclusive_0000.root")["evt"].arrays(["Pid", "Nmcps"])
    assert len(events) == 400
    assert (events["Nmcps"].to_numpy() > 1).all()


def test_simulate_from_besiii_dec_file(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "besiii"
    result = runner.invoke(
        app,
        [
            "simulate", "--events", "300", "--seed", "3", "--out", str(out), "--no-progress",
            "--dec-file", str(shared_data / "decay" / "BES_DECAY_v145.DEC"), "--unknown-particles", "drop",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "300 events in 1 ROOT file," in result.output
    table = pd.read_csv(out / "topology.csv", keep_default_na=False)
    assert table["count"].sum() == 300


def test_dec_file_and_truth_trees_together_fail(tmp_path: Path, shared_data: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate", "--events", "10", "--seed", "1", "--out", str(tmp_path),
            "--dec-file", str(shared_data / "decay" / "BES_DECAY_v145.DEC"),
            "--truth-trees", str(shared_data / "topoana" / "jpsi1.root"),
        ],
    )  # fmt: skip

    assert result.exit_code == 1
    assert "either --dec-file or --truth-trees" in result.output


def test_invalid_event_count_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--events", "0", "--seed", "1", "--out", str(tmp_path)])

    assert result.exit_code == 1
    assert "num_events" in result.output
