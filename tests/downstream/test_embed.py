"""Tests of embedding ROOT files with a pretrained run, and of rebuilding its encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pmse_graph.data.graphs import build_batch
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.downstream.embed import embed_events, encode_batch
from pmse_graph.downstream.embeddings import EmbeddingStore
from pmse_graph.downstream.run_loader import load_encoder, load_run
from pmse_graph.errors import ConfigError, DataError, PmseError
from pmse_graph.pretraining.checkpoint import load_checkpoint
from tests.downstream.pretrained_run import shared_run
from tests.pretraining.generated_ntuples import write_generated


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return shared_run(tmp_path_factory)


def test_load_run_restores_online_weights(tiny_run):
    _, run_dir = tiny_run
    run = load_run(run_dir)
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    for name, value in run.encoder.state_dict().items():
        torch.testing.assert_close(value, saved[f"encoder.{name}"])
    assert not run.encoder.training
    assert run.encoder.embed_dim == 16


def test_load_run_rejects_other_folders(tmp_path, tiny_run):
    with pytest.raises(ConfigError, match="not a pretraining run folder"):
        load_encoder(tmp_path)
    with pytest.raises(PmseError, match="Checkpoint not found"):
        load_run(tiny_run[1], checkpoint=tmp_path / "none.pt")


def test_embed_writes_every_event(tiny_run, tmp_path):
    data, run_dir = tiny_run
    result = embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", batch_size=50, shard_size=100, progress=False)
    store = EmbeddingStore.open(tmp_path / "emb")
    vectors, labels = store.load()
    chunk = next(iterate_chunks(str(data), load_run(run_dir).schema))

    assert result.num_events == store.num_events == chunk.num_events
    assert store.dim == 16
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_array_equal(labels["event_id"], chunk.event_id)
    np.testing.assert_array_equal(labels["y"], chunk.y)
    np.testing.assert_array_equal(labels["y_fs"], chunk.y_fs)
    assert set(labels["split"]) <= {"train", "val", "test"}
    assert store.metadata["step"] == 2
    assert len(store.shards) == 3


def test_embed_matches_direct_encoding(tiny_run, tmp_path):
    data, run_dir = tiny_run
    embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", batch_size=7, progress=False)
    vectors, _ = EmbeddingStore.open(tmp_path / "emb").load(max_events=40)

    # one batch of 40 gives the same embeddings as batches of 7
    run = load_run(run_dir)
    chunk = next(iterate_chunks(str(data), run.schema)).slice(0, 40)
    direct = encode_batch(run.encoder, build_batch(chunk, run.standardizer, schema=run.schema), device=torch.device("cpu"))
    np.testing.assert_allclose(vectors, direct.numpy(), rtol=1e-4, atol=1e-5)


def test_embed_one_split(tiny_run, tmp_path):
    data, run_dir = tiny_run
    result = embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", split="test", progress=False)
    labels = EmbeddingStore.open(tmp_path / "emb").labels()
    assert 0 < result.num_events < result.events_read
    assert set(labels["split"]) == {"test"}


def test_embed_single_event(tiny_run, tmp_path):
    _, run_dir = tiny_run
    data = write_generated(tmp_path / "one.root", num_events=1, seed=3, first_event=77)
    result = embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", progress=False)
    labels = EmbeddingStore.open(tmp_path / "emb").labels()
    chunk = next(iterate_chunks(str(data), load_run(run_dir).schema))
    assert result.num_events == 1
    assert labels["event_id"].tolist() == chunk.event_id.tolist()


def test_embed_errors(tiny_run, tmp_path):
    data, run_dir = tiny_run
    with pytest.raises(ConfigError, match="Invalid split"):
        embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "emb", split="holdout")
    with pytest.raises(DataError, match="not found"):
        embed_events(run_dir=run_dir, data=[str(tmp_path / "missing.root")], out=tmp_path / "emb")
    embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "done", progress=False)
    with pytest.raises(DataError, match="already contains embeddings"):
        embed_events(run_dir=run_dir, data=[str(data)], out=tmp_path / "done", progress=False)
