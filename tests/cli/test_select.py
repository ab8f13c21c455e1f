"""Tests of ``pmse-graph select`` through the typer runner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from pmse_graph.cli.main import app
from pmse_graph.simulation.decay_model import DecayModel
from pmse_graph.simulation.detector import DetectorResponse
from pmse_graph.simulation.generator import SimulationConfig, simulate

runner = CliRunner()

RHO_PI_DEC = """\
Decay J/psi
0.5 pi+ rho- VSS;
0.3 pi0 rho0 VSS;
0.2 mu+ mu- VLL;
Enddecay
Decay rho-
1.0 pi- pi0 VSS;
Enddecay
Decay rho0
1.0 pi+ pi- VSS;
Enddecay
Decay pi0
1.0 gamma gamma PHSP;
Enddecay
End
"""


def generate(folder: Path) -> Path:
    dec = folder / "rho_pi.dec"
    dec.write_text(RHO_PI_DEC)
    config = SimulationConfig(num_events=500, seed=4, chunk_size=500)
    summary = simulate(model=DecayModel.from_dec_file(dec), response=DetectorResponse.from_config(), config=config, out_dir=folder / "sim", progress=False)
    return summary.paths[0]


def test_select_writes_outputs(tmp_path: Path) -> None:
    path = generate(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["select", str(path), "--out", str(out), "--scan", "--tightness", "0.3", "--no-progress"])

    assert result.exit_code == 0, result.output
    assert "of 500 events selected at tightness 0.3" in result.output
    assert "pi+ rho-" in result.output
    for name in ("selection.parquet", "cutflow.csv", "metrics.json", "precision_recall.png", "selection_config.yaml"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["working_point"]["tightness"] == 0.3
    assert metrics["topology"] == str(path.parent / "topology.csv")
    assert len(pd.read_parquet(out / "selection.parquet")) == 500
    # metrics.json and the printed summary both state whether 99% precision is reached
    target = metrics["precision_target"]
    assert target["lines"][0] in result.output
    assert "99% precision" in target["lines"][0]
    assert set(target["reached_by"]) == {name for name, entry in target["classes"].items() if entry["reached"]}


def test_select_rejects_bad_tightness(tmp_path: Path) -> None:
    result = runner.invoke(app, ["select", str(tmp_path / "x.root"), "--out", str(tmp_path / "out"), "--tightness", "2"])

    assert result.exit_code == 1
    assert "Expected --tightness between 0 and 1 (got 2.0)" in result.output


def test_select_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["select", str(tmp_path / "absent.root"), "--out", str(tmp_path / "out"), "--no-progress"])

    assert result.exit_code == 1
    assert "Input file not found" in result.output


def test_select_rejects_unknown_fit(tmp_path: Path) -> None:
    result = runner.invoke(app, ["select", str(tmp_path / "x.root"), "--out", str(tmp_path / "out"), "--fit", "6C"])

    assert result.exit_code == 1
    assert "fit" in result.output


def test_select_truncated_file_names_file(tmp_path: Path) -> None:
    path = generate(tmp_path)
    truncated = tmp_path / "truncated.root"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])

    result = runner.invoke(app, ["select", str(truncated), "--out", str(tmp_path / "out"), "--no-progress"])

    assert result.exit_code == 1, result.output
    assert "truncated.root" in result.output
    assert "Traceback" not in result.output
