"""Tests of the sharded embedding format: writer, store, plain .npy input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmse_graph.downstream.embeddings import INDEX_NAME, EmbeddingStore, EmbeddingWriter
from pmse_graph.errors import DataError


def random_events(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    event_id = np.arange(1000, 1000 + n, dtype=np.int64)
    y = rng.integers(-1, 5, n)
    y_fs = rng.integers(-1, 3, n)
    return vectors, event_id, y, y_fs


def test_writer_round_trip_uneven_chunks(tmp_path):
    vectors, event_id, y, y_fs = random_events(103, 6)
    with EmbeddingWriter(tmp_path / "emb", 6, shard_size=40, metadata={"run": "runs/a"}) as writer:
        for start, stop in [(0, 7), (7, 50), (50, 51), (51, 103)]:
            writer.write(vectors[start:stop], event_id[start:stop], y[start:stop], y_fs[start:stop])

    index = json.loads((tmp_path / "emb" / INDEX_NAME).read_text())
    assert [shard["num_events"] for shard in index["shards"]] == [40, 40, 23]
    assert index["metadata"] == {"run": "runs/a"}
    assert index["dtype"] == "float32"

    store = EmbeddingStore.open(tmp_path / "emb")
    assert store.num_events == 103
    assert store.dim == 6
    loaded, labels = store.load()
    np.testing.assert_array_equal(loaded, vectors)
    np.testing.assert_array_equal(labels["event_id"], event_id)
    np.testing.assert_array_equal(labels["y"], y)
    np.testing.assert_array_equal(labels["y_fs"], y_fs)

    shards = list(store.iter_shards())
    assert [len(shard_vectors) for shard_vectors, _ in shards] == [40, 40, 23]
    assert isinstance(shards[0][0], np.memmap)


def test_store_load_rows_across_shards(tmp_path):
    vectors, event_id, y, y_fs = random_events(50, 3)
    with EmbeddingWriter(tmp_path, 3, shard_size=16) as writer:
        writer.write(vectors, event_id, y, y_fs)
    store = EmbeddingStore.open(tmp_path)
    rows = np.array([49, 0, 17, 16, 33])
    loaded, labels = store.load(rows=rows)
    np.testing.assert_array_equal(loaded, vectors[rows])
    np.testing.assert_array_equal(labels["event_id"], event_id[rows])
    first, _ = store.load(max_events=5)
    np.testing.assert_array_equal(first, vectors[:5])


def test_writer_converts_float64_and_keeps_split(tmp_path):
    vectors, event_id, _, _ = random_events(10, 4)
    with EmbeddingWriter(tmp_path, 4) as writer:
        writer.write(vectors.astype(np.float64), event_id, split=["train"] * 5 + ["test"] * 5)
    loaded, labels = EmbeddingStore.open(tmp_path).load()
    assert loaded.dtype == np.float32
    assert list(labels["split"]) == ["train"] * 5 + ["test"] * 5
    assert (labels["y"] == -1).all()


def test_writer_rejects_nan_naming_event_ids(tmp_path):
    vectors, event_id, _, _ = random_events(10, 4)
    vectors[3, 1] = np.nan
    vectors[7, 0] = np.inf
    with pytest.raises(DataError, match="2 embeddings .* event ids 1003, 1007"):
        with EmbeddingWriter(tmp_path, 4) as writer:
            writer.write(vectors, event_id)
    assert not (tmp_path / INDEX_NAME).exists()


def test_writer_rejects_wrong_dim_and_existing_store(tmp_path):
    vectors, event_id, _, _ = random_events(4, 4)
    with EmbeddingWriter(tmp_path, 4) as writer:
        with pytest.raises(DataError, match="dimension 4"):
            writer.write(vectors[:, :3], event_id)
        writer.write(vectors, event_id)
    with pytest.raises(DataError, match="already contains embeddings"):
        EmbeddingWriter(tmp_path, 4)
    EmbeddingWriter(tmp_path, 4, overwrite=True).close()
    assert EmbeddingStore.open(tmp_path).num_events == 0


def test_unfinished_folder_is_rejected(tmp_path):
    writer = EmbeddingWriter(tmp_path, 2, shard_size=2)
    writer.write(np.zeros((3, 2)), np.arange(3))
    with pytest.raises(DataError, match="index.json not found"):
        EmbeddingStore.open(tmp_path)


def test_shard_mismatch_is_reported(tmp_path):
    vectors, event_id, _, _ = random_events(6, 2)
    with EmbeddingWriter(tmp_path, 2) as writer:
        writer.write(vectors, event_id)
    np.save(tmp_path / "shard-00000.npy", vectors[:5])
    with pytest.raises(DataError, match=r"shard-00000.npy: expected shape \(6, 2\)"):
        EmbeddingStore.open(tmp_path)


def test_plain_npy_with_and_without_parquet(tmp_path):
    vectors, event_id, y, y_fs = random_events(8, 3)
    np.save(tmp_path / "emb.npy", vectors)
    store = EmbeddingStore.open(tmp_path / "emb.npy")
    _, labels = store.load()
    np.testing.assert_array_equal(labels["event_id"], np.arange(8))
    assert (labels["y"] == -1).all()

    pd.DataFrame({"event_id": event_id, "y": y, "y_fs": y_fs}).to_parquet(tmp_path / "emb.parquet")
    _, labels = EmbeddingStore.open(tmp_path / "emb.npy").load()
    np.testing.assert_array_equal(labels["event_id"], event_id)


def test_from_array_and_missing_path(tmp_path):
    store = EmbeddingStore.from_array(np.ones((5, 2), dtype=np.float64), y=np.arange(5))
    vectors, labels = store.load()
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_array_equal(labels["y"], np.arange(5))
    with pytest.raises(DataError, match="does not exist"):
        EmbeddingStore.open(tmp_path / "missing")
