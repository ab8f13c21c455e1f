"""Tests of the run report (markdown and HTML)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pmse_graph.downstream.classify import ProbeSettings, run_classification
from pmse_graph.downstream.report import Block, flatten, render_markdown, write_report
from pmse_graph.errors import ConfigError
from tests.downstream.pretrained_run import shared_run, write_cluster_store


def test_flatten_nested_metrics():
    flat = flatten({"a": {"b": 1, "c": [{"d": 2}]}, "e": list(range(20))})
    assert flat["a.b"] == 1
    assert flat["a.c.0.d"] == 2
    assert flat["e"].endswith("(20 values)")


def test_markdown_table_escapes_pipes(tmp_path):
    text = render_markdown([Block("table", pd.DataFrame({"tree": ["a | b"], "share": [0.123456]}))], base=tmp_path)
    assert "a \\| b" in text
    assert "0.1235" in text


def test_report_of_run_and_results(tmp_path_factory, tmp_path):
    _, run_dir = shared_run(tmp_path_factory)
    classify_dir = tmp_path / "classify"
    run_classification(embeddings=write_cluster_store(tmp_path / "emb"), out=classify_dir, method="knn", top=6, probe=ProbeSettings(epochs=1, min_steps=1))
    cluster_dir = tmp_path / "cluster"
    cluster_dir.mkdir()
    (cluster_dir / "metrics.json").write_text(json.dumps({"purity": 0.75, "nmi": {"value": 0.5}}))

    markdown_path, html_path = write_report(run_dir=run_dir, out=tmp_path / "pages" / "report.html", cluster=cluster_dir, classify=classify_dir)
    assert markdown_path.name == "report.md"
    markdown = markdown_path.read_text()
    page = html_path.read_text()

    assert "## Loss curves" in markdown
    assert "encoder:" in markdown
    assert "| knn |" in markdown
    assert "Where classes go" in markdown
    assert "| nmi.value | 0.5 |" in markdown
    # markdown links images relative to its folder, HTML embeds them
    assert "confusion_knn.png](../classify/confusion_knn.png)" in markdown
    assert page.count("data:image/png;base64,") == 3
    assert "<table" in page


def test_report_rejects_missing_folders(tmp_path_factory, tmp_path):
    _, run_dir = shared_run(tmp_path_factory)
    with pytest.raises(ConfigError, match="not a pretraining run folder"):
        write_report(run_dir=tmp_path, out=tmp_path / "r.md")
    with pytest.raises(ConfigError, match="Results folder not found"):
        write_report(run_dir=run_dir, out=tmp_path / "r.md", anomaly=tmp_path / "none")
