"""Graph encoder specifics: pair features reach the output, self-loops for lone particles."""

from __future__ import annotations

import torch
from tests.models.model_batches import small_config

from pmse_graph.models import build_encoder


def test_graph_encoder_uses_pair_features(spec, batch):
    encoder = build_encoder(small_config(kind="graph"), spec).eval()
    changed = batch.clone()
    changed.edge_attr = changed.edge_attr + 1.0

    with torch.no_grad():
        reference = encoder(batch)
        with_changed_pairs = encoder(changed)

    # event 0 has one particle and no edges, so only the other events move
    torch.testing.assert_close(with_changed_pairs.event_embedding[0], reference.event_embedding[0])
    assert not torch.allclose(with_changed_pairs.event_embedding[1:], reference.event_embedding[1:])


def test_graph_encoder_lone_particle_attends_to_itself(spec, batch):
    encoder = build_encoder(small_config(kind="graph"), spec).eval()
    lone = int(batch.ptr[0])
    changed = batch.clone()
    changed.x[lone] = changed.x[lone] + 1.0
    attention_outputs = []
    encoder.blocks[0].attention.register_forward_hook(lambda module, inputs, output: attention_outputs.append(output[lone]))

    with torch.no_grad():
        encoder(batch)
        encoder(changed)

    # without a self-loop the lone particle's attention output would be the constant output bias
    assert not torch.allclose(attention_outputs[0], attention_outputs[1])


def test_graph_encoder_dense_matches_sparse(spec, batch):
    sparse = build_encoder(small_config(kind="graph"), spec).eval()
    dense = build_encoder(small_config(kind="graph", graph_attention="dense"), spec).eval()
    dense.load_state_dict(sparse.state_dict())
    node_mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    node_mask[[2, 10, 11]] = True

    with torch.no_grad():
        expected = sparse(batch, node_mask=node_mask)
        result = dense(batch, node_mask=node_mask)

    torch.testing.assert_close(result.node_states, expected.node_states, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(result.event_embedding, expected.event_embedding, atol=1e-5, rtol=1e-4)
