"""Transformer baseline specifics: pair features only with a pair bias, CLS pooling."""

from __future__ import annotations

import torch
from tests.models.model_batches import small_config

from pmse_graph.models import build_encoder


def encode_with_changed_pairs(encoder, batch):
    changed = batch.clone()
    changed.edge_attr = changed.edge_attr + torch.randn(changed.edge_attr.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return encoder(batch), encoder(changed)


def test_transformer_ignores_pairs_without_bias(spec, batch):
    encoder = build_encoder(small_config(kind="transformer"), spec).eval()

    reference, changed = encode_with_changed_pairs(encoder, batch)

    torch.testing.assert_close(changed.event_embedding, reference.event_embedding, atol=0, rtol=0)


def test_transformer_pair_bias_uses_pairs(spec, batch):
    encoder = build_encoder(small_config(kind="transformer", pair_bias=True), spec).eval()

    reference, changed = encode_with_changed_pairs(encoder, batch)

    assert not torch.allclose(changed.event_embedding, reference.event_embedding)


def test_transformer_cls_pooling_has_no_pooling_module(spec):
    cls_encoder = build_encoder(small_config(kind="transformer"), spec)
    pooled_encoder = build_encoder(small_config(kind="transformer", pooling="attention"), spec)

    assert cls_encoder.pooling is None
    assert pooled_encoder.pooling is not None
