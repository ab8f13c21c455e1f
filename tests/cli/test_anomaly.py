"""Tests of ``pmse-graph anomaly`` through the typer runner."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from pmse_graph.cli.main import app
from tests.downstream.pretrained_run import TREES, write_cluster_store, write_topology

runner = CliRunner()


def test_anomaly_command(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    out = tmp_path / "out"
    result = runner.invoke(app, ["anomaly", "--embeddings", str(store), "--out", str(out), "--k", "5", "--top", "5"])
    assert result.exit_code == 0, result.output
    assert "ROC AUC" in result.output
    assert "at a false-positive rate of 5%" in result.output
    assert (out / "roc.png").is_file()
    assert set(pd.read_parquet(out / "scores.parquet").columns) >= {"event_id", "y", "is_anomaly", "score"}


def test_anomaly_errors_are_one_line(tmp_path):
    store = write_cluster_store(tmp_path / "emb", num_events=60)
    result = runner.invoke(app, ["anomaly", "--embeddings", str(store), "--out", str(tmp_path / "out"), "--k", "1000", "--top", "3"])
    assert result.exit_code == 1
    assert "k = 1000 exceeds" in result.output


def test_anomaly_names_classes_by_tree(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    table = write_topology(tmp_path / "topology.csv")
    out = tmp_path / "out"
    result = runner.invoke(app, ["anomaly", "--embeddings", str(store), "--out", str(out), "--k", "5", "--top", "5", "--topology", str(table)])
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(out / "scores.parquet")
    assert (scores["tree"] == [TREES[c] for c in scores["y"]]).all()
    per_class = pd.read_csv(out / "per_class.csv", keep_default_na=False)
    assert (per_class["tree"] == [TREES[c] for c in per_class["class_id"]]).all()
    # the five largest classes are known, the other three anomalous
    assert per_class["anomalous"].sum() == 3
    assert per_class["events"].sum() == len(scores)
