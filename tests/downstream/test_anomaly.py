"""Tests of the kNN-distance anomaly score and its evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmse_graph.downstream.anomaly import efficiency_at_false_positive_rates, knn_distance_scores, run_anomaly
from pmse_graph.downstream.labels import labelled_mask
from pmse_graph.errors import ConfigError, DataError
from tests.downstream.pretrained_run import write_cluster_store


def test_knn_distance_hand_value():
    reference = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0]], dtype=np.float32)
    scores = knn_distance_scores(reference, np.array([[0.0, 3.0]]), k=2)
    assert scores[0] == pytest.approx((3.0 + np.sqrt(10.0)) / 2, rel=1e-5)


def test_knn_distance_batches_agree():
    rng = np.random.default_rng(0)
    reference, queries = rng.normal(size=(50, 4)), rng.normal(size=(37, 4))
    np.testing.assert_allclose(knn_distance_scores(reference, queries, k=3, batch_size=5), knn_distance_scores(reference, queries, k=3), rtol=1e-5)


def test_k_above_reference_rejected():
    with pytest.raises(ConfigError, match="k = 5 exceeds the 2 labelled"):
        knn_distance_scores(np.zeros((2, 3)), np.zeros((1, 3)), k=5)


def test_efficiency_hand_values():
    normal_scores = np.arange(100, dtype=np.float64)
    scores = np.concatenate([normal_scores, [50.0, 99.5, 200.0]])
    is_anomaly = np.arange(len(scores)) >= 100
    points = efficiency_at_false_positive_rates(scores, is_anomaly, [0.01, 0.05])
    # 1%: one of 100 normal events (score 99) may pass, so the threshold is 98
    assert points[0.01]["threshold"] == 98.0
    assert points[0.01]["false_positive_rate"] == pytest.approx(0.01)
    assert points[0.01]["efficiency"] == pytest.approx(2 / 3)
    assert points[0.05]["threshold"] == 94.0
    assert points[0.05]["false_positive_rate"] == pytest.approx(0.05)


def test_rates_checked():
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        efficiency_at_false_positive_rates(np.zeros(3), np.array([True, False, False]), [1.5])


def test_run_anomaly_separates_rare_classes(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    metrics = run_anomaly(embeddings=store, out=tmp_path / "out", k=5, top=5)

    # classes 5, 6 and 7 lie outside the top five: their blobs are far from every reference event
    assert metrics["roc_auc"] > 0.95
    assert [point["false_positive_rate_target"] for point in metrics["operating_points"]] == [0.01, 0.05, 0.1]
    assert metrics["anomalous_events"] > 0
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert len(scores) == metrics["scored_events"]
    assert not labelled_mask(scores["event_id"].to_numpy(), 0.5).any()
    assert scores.loc[scores["is_anomaly"], "y"].isin([5, 6, 7]).all()
    assert (tmp_path / "out" / "roc.png").is_file()
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["roc_auc"] == metrics["roc_auc"]


def test_run_anomaly_needs_anomalies(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    with pytest.raises(DataError, match="Lower --top"):
        run_anomaly(embeddings=store, out=tmp_path / "out", top=99)


def test_run_anomaly_rejects_nan_rows(tmp_path):
    vectors = np.zeros((3, 2), dtype=np.float32)
    vectors[0, 0] = np.inf
    np.save(tmp_path / "emb.npy", vectors)
    pd.DataFrame({"event_id": [4, 5, 6], "y": [0, 1, 2], "y_fs": [0, 0, 0]}).to_parquet(tmp_path / "emb.parquet")
    with pytest.raises(DataError, match="event ids 4"):
        run_anomaly(embeddings=tmp_path / "emb.npy", out=tmp_path / "out")
