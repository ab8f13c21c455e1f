"""Tests of ``pmse-graph simulate`` through the typer runner."""

from __future__ import annotations

import re
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


def test_rerun_into_earlier_output_refused_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "det_a"
    first = ["simulate", "--events", "500", "--seed", "3", "--out", str(out), "--events-per-file", "200", "--no-progress"]
    assert runner.invoke(app, first).exit_code == 0
    second = ["simulate", "--events", "150", "--seed", "9", "--out", str(out), "--events-per-file", "200", "--no-progress"]

    refused = runner.invoke(app, second)
    assert refused.exit_code == 1
    assert "already contains an earlier run's files" in refused.output
    assert "--overwrite" in refused.output
    assert len(sorted(out.glob("*.root"))) == 3

    replaced = runner.invoke(app, [*second, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert [path.name for path in sorted(out.glob("*.root"))] == ["jpsi_inclusive_0000.root"]
    assert pd.read_csv(out / "topology.csv", keep_default_na=False)["count"].sum() == 150


def test_dec_file_without_jpsi_block_fails_before_writing(tmp_path: Path) -> None:
    dec = tmp_path / "bad4.dec"
    dec.write_text("Decay rho0\n1.0 pi+ pi- VSS;\nEnddecay\nEnd\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", "--events", "10", "--seed", "1", "--out", str(out), "--dec-file", str(dec)])

    assert result.exit_code == 1
    assert "bad4.dec: the DEC file has no J/psi block" in result.output
    assert not out.exists()


def test_closed_decay_tree_names_dec_line_before_writing(tmp_path: Path) -> None:
    # each f_2 line passes the per-line mass check, but K+ K- push every f_2 above 0.99 GeV,
    # so four of them outweigh the J/psi: only the whole tree shows it
    dec = tmp_path / "bad3.dec"
    dec.write_text("Decay J/psi\n0.5 pi+ pi- PHSP;\n0.5 f_2 f_2 f_2 f_2 PHSP;\nEnddecay\nDecay f_2\n1.0 K+ K- PHSP;\nEnddecay\nEnd\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", "--events", "200", "--seed", "1", "--out", str(out), "--dec-file", str(dec)])

    assert result.exit_code == 1
    assert "bad3.dec:3: J/psi -> f_2 f_2 f_2 f_2" in result.output
    assert "cannot be generated" in result.output
    assert not out.exists()


def test_help_names_drop_option_and_chunk_dependence() -> None:
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "240"})

    assert result.exit_code == 0
    # rich draws the options in a box; drop its borders and line breaks
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert "run it with --unknown-particles drop" in text
    assert "same seed with another chunk size gives different events" in text
    assert "--overwrite" in text
