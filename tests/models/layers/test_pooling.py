"""AttentionPooling: per-event softmax, order independence, empty events."""

from __future__ import annotations

import torch

from pmse_graph.models.layers import AttentionPooling


def test_pooling_order_independent():
    torch.manual_seed(0)
    pooling = AttentionPooling(16, heads=4)
    x = torch.randn(7, 16)
    index = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    order = torch.tensor([2, 0, 1, 6, 4, 3, 5])

    torch.testing.assert_close(pooling(x[order], index, num_graphs=2), pooling(x, index, num_graphs=2))


def test_pooling_single_node_is_its_value():
    torch.manual_seed(0)
    pooling = AttentionPooling(8, heads=2)
    x = torch.randn(1, 8)

    pooled = pooling(x, torch.tensor([0]), num_graphs=1)

    torch.testing.assert_close(pooled, pooling.out(pooling.value(x)))


def test_pooling_event_without_nodes_finite():
    pooling = AttentionPooling(8, heads=2)

    pooled = pooling(torch.randn(2, 8), torch.tensor([0, 0]), num_graphs=2)

    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(pooled[1], pooling.out.bias)
