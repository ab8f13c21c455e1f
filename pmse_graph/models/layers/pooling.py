"""Attention pooling of node states into one embedding per event: :class:`AttentionPooling`.

A learned query per head attends over the nodes of each event (softmax over the
nodes of one graph), which makes the event embedding independent of the order
of the particles.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax


class AttentionPooling(nn.Module):
    """Multi-head attention pooling with a learned query.

    Args:
        dim: node state size D, divisible by ``heads``.
        heads: pooling heads, default 4.
    """

    def __init__(self, dim: int, *, heads: int = 4) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"Expected dim divisible by heads (got dim={dim}, heads={heads})")
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.query = nn.Parameter(torch.empty(heads, self.head_dim))
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.query, std=0.02)
        for layer in (self.key, self.value, self.out):
            layer.reset_parameters()

    def forward(self, x: Tensor, index: Tensor, *, num_graphs: int) -> Tensor:
        """Pool the nodes of each event.

        Args:
            x: node states.
            index: event of each node (``batch.batch``).
            num_graphs: number of events; an event without nodes gets a zero vector.

        Shapes:
            x: (num_nodes, D); index: (num_nodes,).
            output: (num_graphs, D).
        """
        shape = (-1, self.heads, self.head_dim)
        keys, values = self.key(x).view(shape), self.value(x).view(shape)  # (N, H, C)
        logits = (keys * self.query).sum(dim=-1) / math.sqrt(self.head_dim)  # (N, H)
        alpha = softmax(logits, index, num_nodes=num_graphs)
        pooled = scatter(values * alpha.unsqueeze(-1), index, dim=0, dim_size=num_graphs, reduce="sum")  # (B, H, C)
        return self.out(pooled.reshape(num_graphs, self.dim))
