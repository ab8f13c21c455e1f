"""Tests of ``pmse-graph embed`` through the typer runner."""

from __future__ import annotations

from typer.testing import CliRunner

from pmse_graph.cli.main import app
from pmse_graph.downstream.embeddings import EmbeddingStore
from tests.downstream.pretrained_run import shared_run

runner = CliRunner()


def test_embed_command(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "emb"), "--batch-size", "64", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    store = EmbeddingStore.open(tmp_path / "emb")
    assert f"Embedded {store.num_events} events (dimension 16)" in result.output
    assert store.num_events == 240


def test_embed_errors_are_one_line(tmp_path_factory, tmp_path):
    data, run_dir = shared_run(tmp_path_factory)
    result = runner.invoke(app, ["embed", "--run", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "emb")])
    assert result.exit_code == 1
    assert "not a pretraining run folder" in result.output

    result = runner.invoke(app, ["embed", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "emb"), "--split", "holdout"])
    assert result.exit_code == 1
    assert "Invalid split 'holdout'" in result.output
