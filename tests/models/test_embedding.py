"""Node and edge embeddings: mask token, edge-mask embedding, self-loops."""

from __future__ import annotations

import pytest
import torch

from pmse_graph.models.embedding import EdgeEmbedding, NodeEmbedding


def test_node_embedding_mask_token_replaces_masked(spec, batch):
    embedding = NodeEmbedding(spec, out_dim=16, categorical_width=4)
    node_mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    node_mask[[0, 5]] = True

    plain = embedding(batch.x, batch.x_cat)
    masked = embedding(batch.x, batch.x_cat, node_mask)

    torch.testing.assert_close(masked[0], embedding.mask_token.detach())
    torch.testing.assert_close(masked[5], embedding.mask_token.detach())
    torch.testing.assert_close(masked[~node_mask], plain[~node_mask])


def test_edge_embedding_masks_edges_touching_masked(batch):
    embedding = EdgeEmbedding(num_edge_features=5, out_dim=8)
    node_mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    node_mask[3] = True
    touches = (batch.edge_index[0] == 3) | (batch.edge_index[1] == 3)

    _, plain = embedding(batch.edge_attr, batch.edge_index, num_nodes=batch.num_nodes, add_self_loops=False)
    _, masked = embedding(batch.edge_attr, batch.edge_index, num_nodes=batch.num_nodes, node_mask=node_mask, add_self_loops=False)

    assert int(touches.sum()) == 6  # node 3 sits in the 4-particle event: 3 outgoing and 3 incoming edges
    torch.testing.assert_close(masked[touches], embedding.mask_embedding.detach().expand(6, -1))
    torch.testing.assert_close(masked[~touches], plain[~touches])


def test_edge_embedding_appends_self_loops(batch):
    embedding = EdgeEmbedding(num_edge_features=5, out_dim=8)
    num_edges = batch.edge_index.shape[1]

    edge_index, edge_embedding = embedding(batch.edge_attr, batch.edge_index, num_nodes=batch.num_nodes)

    assert edge_index.shape == (2, num_edges + batch.num_nodes)
    assert edge_embedding.shape == (num_edges + batch.num_nodes, 8)
    loops = torch.arange(batch.num_nodes)
    torch.testing.assert_close(edge_index[:, num_edges:], torch.stack([loops, loops]))
    torch.testing.assert_close(edge_embedding[num_edges:], embedding.self_loop_embedding.detach().expand(batch.num_nodes, -1))


def test_edge_features_scaled_by_name():
    from pmse_graph.data.schema import load_schema
    from pmse_graph.models import ModelInputSpec
    from pmse_graph.models.embedding import EDGE_FEATURE_SCALES, PAIR_LOG_FLOOR

    spec = ModelInputSpec.from_schema(load_schema("besiii"))
    assert spec.edge_feature_names[:2] == ("log_m2", "cos_angle")
    embedding = EdgeEmbedding(num_edge_features=spec.num_edge_features, out_dim=8, feature_names=spec.edge_feature_names)
    assert set(spec.edge_feature_names) <= set(EDGE_FEATURE_SCALES)

    # the extreme values the pair features take: the log clamp floor, the largest time difference
    extremes = {"log_m2": PAIR_LOG_FLOOR, "log_kt": PAIR_LOG_FLOOR, "log_z": PAIR_LOG_FLOOR, "cos_angle": -1.0, "sin_angle": 1.0,
                "shower_log_distance": 5.0, "shower_time_difference": -29.0, "both_showers": 1.0}
    edge_attr = torch.tensor([[extremes[name] for name in spec.edge_feature_names]])
    scaled = edge_attr * embedding.input_scale
    assert scaled.abs().max() <= 2.5
    assert float(scaled[0, spec.edge_feature_names.index("log_kt")]) == pytest.approx(-2.0)

    # the MLP receives the scaled columns, and the factors are part of the state dict
    first_layer = embedding.mlp[0]
    seen = []
    handle = first_layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    embedding(edge_attr, torch.tensor([[0], [1]]), num_nodes=2, add_self_loops=False)
    handle.remove()
    assert torch.allclose(seen[0], scaled)
    assert torch.equal(embedding.state_dict()["input_scale"], embedding.input_scale)


def test_edge_embedding_without_names_leaves_columns_unscaled():
    embedding = EdgeEmbedding(num_edge_features=3, out_dim=4)
    assert torch.equal(embedding.input_scale, torch.ones(3))


def test_spec_rejects_wrong_number_of_edge_feature_names():
    from pmse_graph.errors import ConfigError
    from pmse_graph.models import ModelInputSpec

    with pytest.raises(ConfigError, match="one edge feature name per edge_attr column"):
        ModelInputSpec(num_node_features=2, categorical_cardinalities=(3,), num_edge_features=2, edge_feature_names=("log_m2",))
