"""Tests of ``pmse-graph classify`` through the typer runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pmse_graph.cli.main import app
from tests.downstream.pretrained_run import shared_run, write_cluster_store

runner = CliRunner()


def test_classify_command_frozen_methods(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    out = tmp_path / "out"
    result = runner.invoke(app, ["classify", "--embeddings", str(store), "--out", str(out), "--top", "6", "--probe-epochs", "2", "--k", "5"])
    assert result.exit_code == 0, result.output
    assert "probe: accuracy" in result.output
    assert "knn: accuracy" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labelled_fraction"] == 0.5
    assert len(metrics["classes"]) == 6
    for name in ("predictions.parquet", "per_class.csv", "where_classes_go.csv", "operating_points.csv", "confusion_knn.png", "precision_recall_probe.png"):
        assert (out / name).is_file(), name


def test_classify_command_finetune(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    emb = tmp_path / "emb"
    assert runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(data), "--out", str(emb), "--device", "cpu"]).exit_code == 0
    result = runner.invoke(app, [
        "classify", "--embeddings", str(emb), "--out", str(tmp_path / "out"), "--method", "finetune", "--top", "4",
        "--run", str(run_dir), "--data", str(data), "--finetune-epochs", "1", "--batch-size", "64", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    assert "finetune: accuracy" in result.output


def test_classify_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["classify", "--embeddings", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Embeddings not found" in result.output

    store = write_cluster_store(tmp_path / "emb")
    result = runner.invoke(app, ["classify", "--embeddings", str(store), "--out", str(tmp_path / "out"), "--labelled-fraction", "0"])
    assert result.exit_code == 1
    assert "strictly between 0 and 1" in result.output
