"""Tests of ``pmse-graph cluster`` through typer's runner on small synthetic embeddings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pmse_graph.cli.main import app
from pmse_graph.downstream import clustering
from pmse_graph.downstream.class_names import short_tree
from pmse_graph.downstream.embeddings import EmbeddingWriter
from pmse_graph.downstream.plots import plot_class_map
from tests.downstream.pretrained_run import TREES, write_cluster_store, write_topology

runner = CliRunner()


def write_embeddings(path, *, n: int = 600, classes: int = 12, dim: int = 16, seed: int = 0, nan_rows=(), shard_size: int = 250):
    """Write Gaussian blobs, one per decay-tree class, as an embedding store; event ids start at 5000."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dim)) * 10
    y = rng.integers(0, classes, n)
    vectors = means[y] + rng.normal(size=(n, dim))
    vectors[list(nan_rows)] = np.nan
    event_id = np.arange(5000, 5000 + n)
    y_fs = y // 2
    y[:5] = -1
    # the writer rejects NaN, so a store with NaN rows is written as a plain .npy + parquet pair
    if nan_rows:
        np.save(path.with_suffix(".npy"), vectors.astype(np.float32))
        pd.DataFrame({"event_id": event_id, "y": y, "y_fs": y_fs}).to_parquet(path.with_suffix(".parquet"))
        return path.with_suffix(".npy"), y
    with EmbeddingWriter(path, dim, shard_size=shard_size, metadata={"run": "synthetic"}) as writer:
        writer.write(vectors, event_id, y, y_fs)
    return path, y


def invoke(*arguments: str):
    return runner.invoke(app, ["cluster", *arguments])


def test_kmeans_writes_all_outputs(tmp_path):
    embeddings, y = write_embeddings(tmp_path / "emb")
    out = tmp_path / "out"
    result = invoke("--embeddings", str(embeddings), "--k", "24", "--seed", "1", "--out", str(out), "--tsne-points", "150")
    assert result.exit_code == 0, result.output
    assert "k-means (flat, assignment exact): k=24" in result.output
    assert "decay_tree: purity" in result.output

    assignments = pd.read_parquet(out / "assignments.parquet")
    assert list(assignments.columns) == ["event_id", "cluster", "y", "y_fs"]
    assert assignments["event_id"].tolist() == list(range(5000, 5600))
    assert assignments["cluster"].between(0, 23).all()
    np.testing.assert_array_equal(assignments["y"], y)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "kmeans"
    assert metrics["all_noise"] is False
    assert metrics["embedding_metadata"] == {"run": "synthetic"}
    assert metrics["kmeans"]["k"] == 24
    assert metrics["quality"]["decay_tree"]["num_unknown_class"] == 5
    # faiss starts from random events, so a few classes may share a cluster even with k = 2 x classes
    assert metrics["quality"]["decay_tree"]["purity"] > 0.75
    known = assignments[assignments["y"] >= 0]
    majority = known.groupby("cluster")["y"].agg(lambda classes: classes.value_counts().iloc[0]).sum()
    assert metrics["quality"]["decay_tree"]["purity"] == pytest.approx(majority / len(known))
    assert metrics["quality"]["final_state"]["num_classes"] == 6

    assert np.load(out / "centroids.npy").shape == (24, 16)
    per_class = pd.read_csv(out / "per_class.csv")
    assert len(per_class) == 12
    assert per_class["events"].sum() == 595
    assert (out / "tsne_top20.png").read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(out / "tsne_top20.csv")) == 150


def test_two_level_reports_objective_against_flat(tmp_path):
    embeddings, _ = write_embeddings(tmp_path / "emb", n=1500, classes=30, dim=8)
    out = tmp_path / "out"
    result = invoke(
        "--embeddings", str(embeddings), "--k", "40", "--kmeans-method", "two_level", "--refine-iterations", "1",
        "--probe", "3", "--compare-sample", "1000", "--tsne-points", "0", "--out", str(out),
    )
    assert result.exit_code == 0, result.output
    assert "two-level / flat objective on 1000 events" in result.output
    kmeans = json.loads((out / "metrics.json").read_text())["kmeans"]
    assert kmeans["method"] == "two_level"
    assert kmeans["refine_iterations"] == 1
    assert kmeans["groups"] == 6  # round(sqrt(40))
    assert kmeans["assignment_search"] == "two-level probe=3 of 6 groups"
    group = np.load(out / "centroid_group.npy")
    assert np.load(out / "coarse_centroids.npy").shape == (6, 8)
    assert group.shape == (40,)
    assert (np.diff(group) >= 0).all()
    comparison = kmeans["objective_vs_flat"]
    assert comparison["k"] == round(40 * 1000 / 1500)
    # below 1 when flat k-means ends in a worse local minimum than two-level
    assert 0.0 < comparison["ratio"] < 1.2
    assert comparison["ratio"] == pytest.approx(comparison["two_level_objective"] / comparison["flat_objective"])
    assert not (out / "tsne_top20.png").exists()


def test_k_larger_than_events(tmp_path):
    embeddings, _ = write_embeddings(tmp_path / "emb", n=30)
    result = invoke("--embeddings", str(embeddings), "--k", "31", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "k=31 clusters from 30 events" in result.output


def test_nan_rows_rejected_then_dropped(tmp_path):
    embeddings, _ = write_embeddings(tmp_path / "emb", n=200, nan_rows=(7, 150))
    out = tmp_path / "out"
    result = invoke("--embeddings", str(embeddings), "--k", "4", "--out", str(out))
    assert result.exit_code == 1
    assert "2 of 200 embeddings contain NaN or infinity, event ids 5007, 5150" in result.output

    result = invoke("--embeddings", str(embeddings), "--k", "4", "--nonfinite", "drop", "--tsne-points", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2 non-finite skipped" in result.output
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert assignments.loc[[7, 150], "cluster"].tolist() == [-1, -1]
    assert (assignments.drop(index=[7, 150])["cluster"] >= 0).all()
    assert json.loads((out / "metrics.json").read_text())["num_nonfinite_skipped"] == 2


def test_float64_npy_input(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(100, 5))
    np.save(tmp_path / "emb.npy", vectors)
    out = tmp_path / "out"
    result = invoke("--embeddings", str(tmp_path / "emb.npy"), "--k", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "no event with a known class" in result.output
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert assignments["event_id"].tolist() == list(range(100))
    assert np.load(out / "centroids.npy").dtype == np.float32


def test_single_event(tmp_path):
    with EmbeddingWriter(tmp_path / "emb", 4) as writer:
        writer.write(np.ones((1, 4)), [42], [3], [1])
    out = tmp_path / "out"
    result = invoke("--embeddings", str(tmp_path / "emb"), "--k", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out / "assignments.parquet")["cluster"].tolist() == [0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quality"]["decay_tree"]["purity"] == 1.0
    assert metrics["tsne_png"] is None


def test_single_event_two_level_skips_comparison(tmp_path):
    with EmbeddingWriter(tmp_path / "emb", 4) as writer:
        writer.write(np.ones((1, 4)), [42], [3], [1])
    out = tmp_path / "out"
    result = invoke("--embeddings", str(tmp_path / "emb"), "--k", "1", "--kmeans-method", "two_level", "--tsne-points", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    comparison = json.loads((out / "metrics.json").read_text())["kmeans"]["objective_vs_flat"]
    assert "Cannot compare k-means methods on 1 sampled events" in comparison["skipped"]
    assert pd.read_parquet(out / "assignments.parquet")["cluster"].tolist() == [0]


def test_hdbscan_clusters_and_all_noise(tmp_path):
    embeddings, _ = write_embeddings(tmp_path / "emb", n=400, classes=4, dim=6)
    out = tmp_path / "out"
    result = invoke("--embeddings", str(embeddings), "--method", "hdbscan", "--min-cluster-size", "15", "--tsne-points", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["hdbscan"]["num_clusters"] == 4
    assert metrics["quality"]["decay_tree"]["nmi"] > 0.9
    assert not (out / "centroids.npy").exists()

    uniform = np.random.default_rng(2).uniform(size=(50, 4))
    np.save(tmp_path / "uniform.npy", uniform)
    noise_out = tmp_path / "noise"
    result = invoke("--embeddings", str(tmp_path / "uniform.npy"), "--method", "hdbscan", "--min-cluster-size", "40", "--min-samples", "5", "--out", str(noise_out))
    assert result.exit_code == 0, result.output
    assert "every event is noise" in result.output
    metrics = json.loads((noise_out / "metrics.json").read_text())
    assert metrics["all_noise"] is True
    assert metrics["hdbscan"]["noise_fraction"] == 1.0
    assert (pd.read_parquet(noise_out / "assignments.parquet")["cluster"] == -1).all()


def test_hdbscan_tiny_input(tmp_path):
    np.save(tmp_path / "tiny.npy", np.zeros((5, 3), np.float32))
    result = invoke("--embeddings", str(tmp_path / "tiny.npy"), "--method", "hdbscan", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "min_cluster_size=20 and min_samples=10 (got n=5)" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--method", "spectral"], "clustering method"),
        ([], "k-means needs the number of clusters"),
        (["--k", "2", "--kmeans-method", "exact"], "k-means method"),
        (["--k", "2", "--nonfinite", "zero"], "non-finite policy"),
        (["--k", "2", "--probe", "0"], "Expected probe >= 1 (got 0)"),
        (["--method", "hdbscan", "--max-fit-points", "5"], "raise --max-fit-points"),
    ],
)
def test_invalid_options(tmp_path, arguments, message):
    embeddings, _ = write_embeddings(tmp_path / "emb", n=20)
    result = invoke("--embeddings", str(embeddings), "--out", str(tmp_path / "out"), *arguments)
    assert result.exit_code == 1
    assert message in result.output


def test_missing_embeddings(tmp_path):
    result = invoke("--embeddings", str(tmp_path / "none"), "--k", "2", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_cluster_names_classes_by_tree(tmp_path, monkeypatch):
    table = write_topology(tmp_path / "sim" / "topology.csv")
    store = write_cluster_store(tmp_path / "emb", metadata={"topology_tables": [str(table)]})
    legends = []

    def recording_plot(frame, **options):
        legends.append(options["class_names"])
        return plot_class_map(frame, **options)

    monkeypatch.setattr(clustering, "plot_class_map", recording_plot)
    out = tmp_path / "out"
    result = invoke("--embeddings", str(store), "--k", "8", "--tsne-points", "120", "--out", str(out))
    assert result.exit_code == 0, result.output
    per_class = pd.read_csv(out / "per_class.csv", keep_default_na=False)
    assert list(per_class.columns[:2]) == ["class", "tree"]
    assert (per_class["tree"] == [TREES[c] for c in per_class["class"]]).all()
    assert json.loads((out / "metrics.json").read_text())["topology"] == str(table)
    # the legend shows the trees without their J/psi head, shortened
    (legend,) = legends
    assert legend[5] == "e+ e-"
    assert legend[0] == short_tree(TREES[0])
