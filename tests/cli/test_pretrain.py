"""Tests of ``pmse-graph pretrain`` through the typer runner."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pmse_graph.cli.main import app
from tests.pretraining.generated_ntuples import write_generated

runner = CliRunner()


def small_config(path: Path) -> Path:
    config = {
        "encoder": {"kind": "graph", "depth": 1, "width": 16, "heads": 2, "pooling_heads": 2, "edge_width": 8, "condition_width": 8, "categorical_width": 4},
        "heads": {"projection_hidden": 16, "projection_dim": 8},
        "data": {"batch_size": 32, "shuffle_buffer": 32, "step_size": 100},
        "optim": {"warmup_steps": 1},
        "epochs": 5,
        "device": "cpu",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_pretrain_command_overrides_and_resumes(tmp_path):
    data = write_generated(tmp_path / "events.root", num_events=120, seed=4)
    config = small_config(tmp_path / "config.yaml")
    run_dir = tmp_path / "run"
    arguments = ["pretrain", "--config", str(config), "--data", str(data), "--out", str(run_dir), "--steps-per-epoch", "2"]

    result = runner.invoke(app, [*arguments, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "1 epoch(s), 2 steps" in result.output
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["epochs"] == 1
    assert resolved["data"]["steps_per_epoch"] == 2

    # a second epoch continues the same run folder
    result = runner.invoke(app, [*arguments, "--epochs", "2", "--resume"])
    assert result.exit_code == 0, result.output
    assert "2 epoch(s), 4 steps" in result.output
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    assert [record["epoch"] for record in epochs if record["kind"] == "epoch"] == [0, 1]


def test_pretrain_errors_are_one_line(tmp_path):
    config = small_config(tmp_path / "config.yaml")
    result = runner.invoke(app, ["pretrain", "--config", str(config), "--data", str(tmp_path / "none.root"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "Input file not found" in result.output

    result = runner.invoke(app, ["pretrain", "--config", str(config), "--data", "x.root", "--out", str(tmp_path / "run"), "--precision", "fp8"])
    assert result.exit_code == 1
    assert "precision" in result.output
