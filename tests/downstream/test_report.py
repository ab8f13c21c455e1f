"""Tests of the run report (markdown and HTML)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pmse_graph.downstream.anomaly import run_anomaly
from pmse_graph.downstream.class_names import short_tree
from pmse_graph.downstream.classify import ProbeSettings, run_classification
from pmse_graph.downstream.clustering import cluster_embeddings
from pmse_graph.downstream.report import Block, flatten, render_markdown, write_report
from pmse_graph.errors import ConfigError
from tests.downstream.pretrained_run import TREES, shared_run, write_cluster_store, write_topology


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


def test_report_summary_and_trees(tmp_path_factory, tmp_path):
    _, run_dir = shared_run(tmp_path_factory)
    table = write_topology(tmp_path / "sim" / "topology.csv")
    store = write_cluster_store(tmp_path / "emb", metadata={"topology_tables": [str(table)]})
    clusters = [tmp_path / "k4", tmp_path / "k8"]
    cluster_embeddings(store, out_dir=clusters[0], k=4, tsne_points=100)
    cluster_embeddings(store, out_dir=clusters[1], k=8, tsne_points=0)
    run_classification(embeddings=store, out=tmp_path / "classify", method="all", top=6, probe=ProbeSettings(epochs=1, min_steps=1))
    run_anomaly(embeddings=store, out=tmp_path / "anomaly", k=5, top=5)

    markdown_path, _ = write_report(run_dir=run_dir, out=tmp_path / "report", cluster=clusters, classify=tmp_path / "classify", anomaly=tmp_path / "anomaly")
    markdown = markdown_path.read_text()

    # the summary table comes before the run details, one row per result
    assert markdown.index("## Summary") < markdown.index("## Run information") < markdown.index("## Clustering k4")
    summary = markdown[markdown.index("## Summary"): markdown.index("## Run information")]
    assert "| result | method | classes or k | accuracy | macro F1 | purity | NMI | ROC AUC |" in summary
    for row in ("| classification | probe | 6 |", "| classification | knn | 6 |", "| clustering k4 | k-means (flat) | 4 |",
                "| clustering k8 | k-means (flat) | 8 |", "| anomaly | kNN distance (k=5) | 5 |"):
        assert row in summary, row
    # no raw t-SNE coordinates or embed bookkeeping, but the t-SNE picture
    assert "tsne_x" not in markdown
    assert "tsne_top20.csv" not in markdown
    assert "embedding_metadata" not in markdown
    assert "tsne_top20.png" in markdown
    # trees named from the recorded table, shortened, in the cluster, classification and anomaly tables
    assert f"Decay trees named from `{table}`" in markdown
    assert "| true_class | true_tree |" in markdown
    assert f"| {short_tree(TREES[0])} |" in markdown
    assert "J/psi --> rho+ pi-" not in markdown
