"""Tests of ``pmse-graph report`` through the typer runner."""

from __future__ import annotations

from typer.testing import CliRunner

from pmse_graph.cli.main import app
from tests.downstream.pretrained_run import shared_run, write_cluster_store

runner = CliRunner()


def test_report_command(tmp_path_factory, tmp_path):
    _, run_dir = shared_run(tmp_path_factory)
    store = write_cluster_store(tmp_path / "emb")
    assert runner.invoke(app, ["anomaly", "--embeddings", str(store), "--out", str(tmp_path / "anomaly"), "--top", "5"]).exit_code == 0

    result = runner.invoke(app, ["report", str(run_dir), "--anomaly", str(tmp_path / "anomaly"), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "Report written" in result.output
    markdown = (tmp_path / "report.md").read_text()
    assert "## Anomaly detection" in markdown
    assert "roc_auc" in markdown
    assert "roc.png" in (tmp_path / "report.html").read_text()


def test_report_missing_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "none"), "--out", str(tmp_path / "report.md")])
    assert result.exit_code == 1
    assert "not a pretraining run folder" in result.output
