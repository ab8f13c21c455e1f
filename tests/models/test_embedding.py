"""Node and edge embeddings: mask token, edge-mask embedding, self-loops."""

from __future__ import annotations

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
