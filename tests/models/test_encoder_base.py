"""Batch checks that run before an encoder embeds its input."""

from __future__ import annotations

import pytest
import torch
from tests.models.model_batches import small_config

from pmse_graph.errors import DataError
from pmse_graph.models import build_encoder


@pytest.mark.parametrize("kind", ["graph", "transformer"])
def test_check_batch_wrong_feature_count(kind, spec, batch):
    encoder = build_encoder(small_config(kind=kind), spec)
    batch.x = batch.x[:, :5]

    with pytest.raises(DataError, match=r"'x' has shape \(\d+, 5\), expected \(\d+, 6\)"):
        encoder(batch)


@pytest.mark.parametrize("kind", ["graph", "transformer"])
def test_check_batch_category_out_of_range(kind, spec, batch):
    encoder = build_encoder(small_config(kind=kind), spec)
    batch.x_cat[3, 1] = 9

    with pytest.raises(DataError, match=r"'pid_type' \(x_cat column 1\) has values \[9\] outside 0..4"):
        encoder(batch)


def test_check_batch_node_mask_shape(spec, batch):
    encoder = build_encoder(small_config(kind="graph"), spec)

    with pytest.raises(DataError, match="node_mask must be a bool tensor"):
        encoder(batch, node_mask=torch.zeros(batch.num_nodes))


def test_check_batch_missing_tensor(spec, batch):
    encoder = build_encoder(small_config(kind="graph"), spec)
    del batch.x_cat

    with pytest.raises(DataError, match=r"missing the tensors \['x_cat'\]"):
        encoder(batch)


def test_check_batch_integer_features(spec, batch):
    encoder = build_encoder(small_config(kind="transformer"), spec)
    batch.x = batch.x.long()

    with pytest.raises(DataError, match="'x' must be floating point"):
        encoder(batch)


def graph_break_frames(encoder, batch) -> tuple[int, list[str]]:
    """Count dynamo's graph breaks in one forward and list the functions they happened in."""
    torch._dynamo.reset()
    try:
        explanation = torch._dynamo.explain(encoder)(batch, None)
    finally:
        torch._dynamo.reset()
    frames = [frame.name for reason in explanation.break_reasons for frame in reason.user_stack]
    return explanation.graph_break_count, frames


def test_sparse_graph_encoder_compiles_without_graph_break(spec, batch):
    encoder = build_encoder(small_config(kind="graph"), spec)

    count, frames = graph_break_frames(encoder, batch)

    assert count == 0, frames


def test_transformer_graph_breaks_are_not_in_check_batch(spec, batch):
    # padding to (num_graphs, N) needs N from the data (to_dense_batch), a break that remains
    encoder = build_encoder(small_config(kind="transformer"), spec)

    _, frames = graph_break_frames(encoder, batch)

    assert "check_batch" not in frames


def test_check_batch_still_runs_eagerly(spec, batch):
    from pmse_graph.models.base import check_batch

    batch.x_cat[0, 0] = -1
    with pytest.raises(DataError, match="outside"):
        check_batch(batch, spec, None)
