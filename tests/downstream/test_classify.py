"""Tests of the top-N classification task: labels, probe, kNN, fine-tuning and written results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmse_graph.data.dataset import split_mask
from pmse_graph.downstream.classify import ProbeSettings, head_logits, knn_logits, run_classification, train_linear_probe
from pmse_graph.downstream.embeddings import EmbeddingWriter
from pmse_graph.downstream.labels import labelled_mask, top_classes
from pmse_graph.errors import ConfigError, DataError
from tests.downstream.pretrained_run import shared_run, write_cluster_store

FAST_PROBE = ProbeSettings(epochs=5, min_steps=150)


def test_labelled_mask_is_deterministic_half():
    event_id = np.arange(20_000)
    mask = labelled_mask(event_id, 0.5)
    assert abs(mask.mean() - 0.5) < 0.02
    np.testing.assert_array_equal(mask, labelled_mask(event_id, 0.5))


def test_labelled_mask_splits_test_events():
    # the pretraining test split keeps about half of its events labelled
    event_id = np.arange(50_000)
    test_events = event_id[split_mask(event_id, "test", (0.8, 0.1, 0.1))]
    assert abs(labelled_mask(test_events, 0.5).mean() - 0.5) < 0.05


def test_labelled_fraction_checked():
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        labelled_mask(np.arange(3), 1.0)


def test_top_classes_order_and_mapping():
    y = np.array([7, 7, 7, 3, 3, 9, 9, 5, -1, -1, -1, -1])
    task = top_classes(y, top=3)
    # ties between 3 and 9 go to the smaller id; unknown labels are not a class
    assert task.class_ids.tolist() == [7, 3, 9]
    assert task.counts.tolist() == [3, 2, 2]
    assert task.to_index(np.array([9, 7, 5, -1, 3, 100])).tolist() == [2, 0, -1, -1, 1, -1]


def test_top_classes_needs_two_classes():
    with pytest.raises(DataError, match="at least two classes"):
        top_classes(np.array([4, 4, -1]), top=99)
    with pytest.raises(ConfigError, match="at least 2"):
        top_classes(np.array([0, 1]), top=1)


def test_knn_logits_vote():
    reference = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    queries = np.array([[0.2, 1.0], [1.0, 0.05]], dtype=np.float32)
    logits = knn_logits(reference, labels, queries, num_classes=3, k=2)
    assert logits.argmax(axis=1).tolist() == [1, 0]
    # class 2 has no neighbour: only the 1e-6 smoothing
    np.testing.assert_allclose(logits[:, 2], np.log(1e-6), rtol=1e-5)


def test_knn_prebuilt_index_same_logits():
    from pmse_graph.downstream.classify import knn_index

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 5)).astype(np.float32)
    labels = rng.integers(0, 4, 200)
    queries = rng.normal(size=(30, 5)).astype(np.float32)
    fresh = knn_logits(reference, labels, queries, num_classes=4, k=7)
    reused = knn_logits(reference, labels, queries, num_classes=4, k=7, index=knn_index(reference))
    np.testing.assert_allclose(reused, fresh, rtol=1e-6)


def test_knn_k_above_reference_is_clipped():
    reference = np.eye(2, dtype=np.float32)
    logits = knn_logits(reference, np.array([0, 1]), reference, num_classes=2, k=10)
    assert logits.shape == (2, 2)
    assert np.isfinite(logits).all()


def test_linear_probe_separates_blobs():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=300)
    x = (4.0 * np.eye(3, 8)[y] + rng.normal(size=(300, 8))).astype(np.float32)
    head = train_linear_probe(x, y, num_classes=3, settings=FAST_PROBE)
    logits = head_logits(head, x)
    assert logits.shape == (300, 3)
    assert (logits.argmax(axis=1) == y).mean() > 0.95


def test_run_classification_writes_results(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    metrics = run_classification(embeddings=store, out=tmp_path / "out", method="all", top=6, probe=FAST_PROBE)

    assert set(metrics["methods"]) == {"probe", "knn"}
    for name in ("probe", "knn"):
        assert metrics["methods"][name]["accuracy"] > 0.9
    assert sorted(metrics["classes"]) == [0, 1, 2, 3, 4, 5]
    out = tmp_path / "out"
    for name in ("predictions.parquet", "metrics.json", "per_class.csv", "where_classes_go.csv", "operating_points.csv",
                 "confusion_probe.png", "precision_recall_knn.png"):
        assert (out / name).is_file(), name

    # only unlabelled events of the top classes are evaluated
    predictions = pd.read_parquet(out / "predictions.parquet")
    probe = predictions[predictions["method"] == "probe"]
    assert not labelled_mask(probe["event_id"].to_numpy(), 0.5).any()
    assert probe["true_class"].isin(range(6)).all()
    assert len(probe) == metrics["evaluated_events"]
    assert probe["probability"].between(0, 1).all()

    where = pd.read_csv(out / "where_classes_go.csv")
    shares = where[where["method"] == "knn"].groupby("true_class")["share"].sum()
    np.testing.assert_allclose(shares, 1.0)
    assert json.loads((out / "metrics.json").read_text())["events_outside_top_classes"] > 0


def test_run_classification_finetune(tmp_path_factory, tmp_path):
    from pmse_graph.downstream.embed import embed_events

    data, run_dir = shared_run(tmp_path_factory)
    embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", batch_size=128, progress=False)
    metrics = run_classification(
        embeddings=tmp_path / "emb", out=tmp_path / "out", method="finetune", top=4, run_dir=run_dir, data=[str(data)],
        finetune_options={"epochs": 1, "batch_size": 64, "device": "cpu", "progress": False},
    )
    summary = metrics["methods"]["finetune"]
    assert summary["events"] == metrics["evaluated_events"]
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert (tmp_path / "out" / "confusion_finetune.png").is_file()


def test_finetune_needs_run(tmp_path):
    store = write_cluster_store(tmp_path / "emb")
    with pytest.raises(ConfigError, match="--run and --data"):
        run_classification(embeddings=store, out=tmp_path / "out", method="finetune")
    with pytest.raises(ConfigError, match="Invalid method"):
        run_classification(embeddings=store, out=tmp_path / "out", method="svm")


def test_nan_rows_rejected(tmp_path):
    vectors = np.ones((4, 3), dtype=np.float32)
    vectors[2, 1] = np.nan
    np.save(tmp_path / "emb.npy", vectors)
    pd.DataFrame({"event_id": [10, 11, 12, 13], "y": [0, 1, 0, 1], "y_fs": [0, 0, 0, 0]}).to_parquet(tmp_path / "emb.parquet")
    with pytest.raises(DataError, match="event ids 12"):
        run_classification(embeddings=tmp_path / "emb.npy", out=tmp_path / "out", method="knn")


def test_single_event_rejected(tmp_path):
    with EmbeddingWriter(tmp_path / "emb", 4) as writer:
        writer.write(np.ones((1, 4), dtype=np.float64), event_id=np.array([5]), y=np.array([2]))
    with pytest.raises(DataError, match="at least two classes"):
        run_classification(embeddings=tmp_path / "emb", out=tmp_path / "out", method="knn")


def test_top_classes_logs_missing_classes(caplog):
    y = np.array([0, 0, 0, 1, 1, 2, -1])
    with caplog.at_level("INFO", logger="pmse_graph.downstream.labels"):
        task = top_classes(y, top=100_000)
    assert task.class_ids.tolist() == [0, 1, 2]
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["--top 100000 is more than the 3 classes with labelled events, so all 3 are used"]
    caplog.clear()
    with caplog.at_level("INFO", logger="pmse_graph.downstream.labels"):
        top_classes(y, top=2)
    assert not caplog.records


def test_finetune_head_starts_from_probe(tmp_path_factory, tmp_path):
    from pmse_graph.downstream.embed import embed_events

    data, run_dir = shared_run(tmp_path_factory)
    embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", batch_size=128, progress=False)
    # with a zero learning rate the fine-tuned model is the frozen encoder with the probe's head
    metrics = run_classification(
        embeddings=tmp_path / "emb", out=tmp_path / "out", method="all", top=4, run_dir=run_dir, data=[str(data)],
        finetune_options={"epochs": 1, "lr": 0.0, "batch_size": 64, "device": "cpu", "progress": False},
    )
    probe, finetune = metrics["methods"]["probe"], metrics["methods"]["finetune"]
    assert finetune["events"] == probe["events"]
    assert finetune["accuracy"] == pytest.approx(probe["accuracy"], abs=1e-9)
    assert finetune["macro_f1"] == pytest.approx(probe["macro_f1"], abs=1e-9)


def test_finetune_head_init_checked(tmp_path_factory):
    from pmse_graph.downstream.finetune import finetune_logits

    data, run_dir = shared_run(tmp_path_factory)
    with pytest.raises(ConfigError, match="head_init"):
        finetune_logits(run_dir=run_dir, data=[str(data)], task=None, labelled_fraction=0.5, calibration_fraction=0.2, head_init="zeros")
