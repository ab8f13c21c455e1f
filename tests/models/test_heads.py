"""Projection, reconstruction and classification heads on encoder outputs."""

from __future__ import annotations

import torch
from tests.models.model_batches import small_config

from pmse_graph.models import ClassificationHead, ProjectionHead, ReconstructionDecoder, build_encoder, count_parameters


def test_heads_shapes_on_encoder_output(spec, batch):
    encoder = build_encoder(small_config(kind="graph"), spec)
    output = encoder(batch)

    projected = ProjectionHead(encoder.embed_dim, 64, 16)(output.event_embedding)
    reconstruction = ReconstructionDecoder(encoder.embed_dim, spec)(output.node_states, output.event_embedding, batch.batch)
    logits = ClassificationHead(encoder.embed_dim, 99, hidden=32)(output.event_embedding)

    assert projected.shape == (batch.num_graphs, 16)
    assert reconstruction.continuous.shape == (batch.num_nodes, spec.num_node_features)
    assert [tuple(t.shape) for t in reconstruction.categorical_logits] == [(batch.num_nodes, 4), (batch.num_nodes, 5)]
    assert logits.shape == (batch.num_graphs, 99)
    assert torch.isfinite(projected).all()
    assert torch.isfinite(reconstruction.continuous).all()


def test_reconstruction_decoder_uses_event_embedding(spec):
    torch.manual_seed(0)
    decoder = ReconstructionDecoder(16, spec)
    node_states = torch.randn(3, 16)
    node_graph = torch.tensor([0, 0, 1])

    first = decoder(node_states, torch.randn(2, 16), node_graph).continuous
    second = decoder(node_states, torch.randn(2, 16), node_graph).continuous

    assert not torch.allclose(first, second)


def test_count_parameters_trainable_only():
    head = ClassificationHead(8, 3)  # LayerNorm 16 + Linear 27
    assert count_parameters(head) == 43
    head.net[0].weight.requires_grad_(False)
    assert count_parameters(head) == 35
    assert count_parameters(head, trainable_only=False) == 43
