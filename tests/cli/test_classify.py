"""Tests of ``pmse-graph classify`` through the typer runner."""

from __future__ import annotations

import json

import pandas as pd

from typer.testing import CliRunner

from pmse_graph.cli.main import app
from tests.downstream.pretrained_run import TREES, shared_run, write_cluster_store, write_topology

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


def test_classify_names_classes_by_tree(tmp_path):
    table = write_topology(tmp_path / "sim" / "topology.csv")
    store = write_cluster_store(tmp_path / "emb", metadata={"topology_tables": [str(table)]})
    out = tmp_path / "out"
    result = runner.invoke(app, ["classify", "--embeddings", str(store), "--out", str(out), "--method", "knn", "--top", "6", "--k", "5"])
    assert result.exit_code == 0, result.output
    per_class = pd.read_csv(out / "per_class.csv", keep_default_na=False)
    assert (per_class["tree"] == [TREES[c] for c in per_class["class_id"]]).all()
    where = pd.read_csv(out / "where_classes_go.csv", keep_default_na=False)
    assert list(where.columns[:5]) == ["method", "true_class", "true_tree", "predicted_class", "predicted_tree"]
    assert (where["predicted_tree"] == [TREES[c] for c in where["predicted_class"]]).all()
    points = pd.read_csv(out / "operating_points.csv", keep_default_na=False)
    assert (points["tree"] == [TREES[c] for c in points["class_id"]]).all()
    assert json.loads((out / "metrics.json").read_text())["topology"] == str(table)

    # an explicit --topology that does not exist is an error
    result = runner.invoke(app, ["classify", "--embeddings", str(store), "--out", str(out), "--method", "knn", "--topology", str(tmp_path / "none.csv")])
    assert result.exit_code == 1
    assert "Topology table not found" in result.output

    # without any table the class ids stay bare
    bare = write_cluster_store(tmp_path / "bare")
    assert runner.invoke(app, ["classify", "--embeddings", str(bare), "--out", str(tmp_path / "bare_out"), "--method", "knn", "--top", "6"]).exit_code == 0
    assert "tree" not in pd.read_csv(tmp_path / "bare_out" / "per_class.csv").columns


def test_classify_top_above_class_count(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    result = runner.invoke(app, ["classify", "--embeddings", str(store), "--out", str(tmp_path / "out"), "--method", "knn", "--top", "100000"])
    assert result.exit_code == 0, result.output
    assert result.output.count("--top 100000 is more than the 8 classes with labelled events, so all of them are used") == 1
    assert len(json.loads((tmp_path / "out" / "metrics.json").read_text())["classes"]) == 8
