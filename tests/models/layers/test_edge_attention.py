"""EdgeAttentionConv against a hand-written dense computation, and without edges."""

from __future__ import annotations

import math

import torch

from pmse_graph.models.layers import EdgeAttentionConv
from pmse_graph.models.layers.edge_attention import densify_edges


def dense_reference(conv: EdgeAttentionConv, x, edge_index, edge_attr):
    """The same attention written as explicit loops over targets and heads."""
    heads, head_dim = conv.heads, conv.head_dim
    q = conv.query(x).view(-1, heads, head_dim)
    k = conv.key(x).view(-1, heads, head_dim)
    v = conv.value(x).view(-1, heads, head_dim)
    bias = conv.edge_bias(edge_attr)
    edge_values = conv.edge_value(edge_attr).view(-1, heads, head_dim)
    out = torch.zeros(x.shape[0], heads, head_dim)
    for target in range(x.shape[0]):
        incoming = (edge_index[1] == target).nonzero().flatten()
        if len(incoming) == 0:
            continue
        sources = edge_index[0, incoming]
        for h in range(heads):
            logits = (q[target, h] * k[sources, h]).sum(-1) / math.sqrt(head_dim) + bias[incoming, h]
            weights = torch.softmax(logits, dim=0)
            out[target, h] = (weights[:, None] * (v[sources, h] + edge_values[incoming, h])).sum(0)
    return conv.out(out.reshape(x.shape[0], -1))


def test_edge_attention_matches_dense_reference():
    torch.manual_seed(0)
    conv = EdgeAttentionConv(16, heads=4, edge_dim=3)
    x = torch.randn(5, 16)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 1, 0], [1, 0, 1, 1, 3, 3, 4]])
    edge_attr = torch.randn(edge_index.shape[1], 3)

    torch.testing.assert_close(conv(x, edge_index, edge_attr), dense_reference(conv, x, edge_index, edge_attr))


def test_edge_attention_node_without_edges_finite():
    conv = EdgeAttentionConv(8, heads=2, edge_dim=3)
    x = torch.randn(3, 8)
    edge_index = torch.tensor([[0], [1]])  # node 2 receives nothing

    out = conv(x, edge_index, torch.randn(1, 3))

    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[2], conv.out.bias)


def test_edge_features_change_attention():
    torch.manual_seed(0)
    conv = EdgeAttentionConv(8, heads=2, edge_dim=3)
    x = torch.randn(3, 8)
    edge_index = torch.tensor([[0, 1], [2, 2]])
    edge_attr = torch.randn(2, 3)

    changed = edge_attr.clone()
    changed[0] += 1.0

    assert not torch.allclose(conv(x, edge_index, edge_attr)[2], conv(x, edge_index, changed)[2])


def test_dense_path_matches_sparse():
    torch.manual_seed(0)
    conv = EdgeAttentionConv(16, heads=4, edge_dim=3)
    x = torch.randn(7, 16)
    node_graph = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    # graph 0 is complete, graph 1 sparse with node 5 receiving nothing, graph 2 a lone node
    edge_index = torch.tensor([[0, 1, 0, 2, 1, 2, 3, 4], [1, 0, 2, 0, 2, 1, 4, 3]])
    edge_attr = torch.randn(edge_index.shape[1], 3)

    sparse = conv(x, edge_index, edge_attr)
    dense = conv.forward_dense(x, densify_edges(edge_index, edge_attr, node_graph, num_graphs=3))

    torch.testing.assert_close(dense, sparse)
    torch.testing.assert_close(dense[5], conv.out.bias.detach())


def test_dense_path_gradients_finite():
    torch.manual_seed(0)
    conv = EdgeAttentionConv(8, heads=2, edge_dim=3)
    x = torch.randn(4, 8, requires_grad=True)
    node_graph = torch.tensor([0, 0, 0, 1])
    edge_index = torch.tensor([[0, 1], [1, 0]])  # node 2 and the lone node 3 receive nothing

    conv.forward_dense(x, densify_edges(edge_index, torch.randn(2, 3), node_graph, num_graphs=2)).square().sum().backward()

    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())
