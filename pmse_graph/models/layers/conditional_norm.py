"""Conditional LayerNorm driven by the four per-event particle counts.

:class:`CountEmbedding` turns the counts (charged, neutral, good charged, good
neutral) into one condition vector per event. :class:`ConditionalLayerNorm`
normalises node states without a learned affine and predicts the scale and shift
from that vector (feature-wise modulation in the style of FiLM, Perez et al. 2018,
arXiv:1709.07871). The modulation starts near zero, so a fresh norm behaves
almost as a plain LayerNorm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CountEmbedding(nn.Module):
    """Embed each clamped count in its own table and sum the rows.

    Counts are clamped to ``0..max_count`` before the look-up, so an event with 0
    or 10^6 particles of a kind gets a finite, learned vector.

    Args:
        num_conditions: columns of the count tensor (4 for BESIII).
        max_count: largest count with its own row; larger counts share that row.
        out_dim: size of the condition vector.
    """

    def __init__(self, *, num_conditions: int, max_count: int, out_dim: int) -> None:
        super().__init__()
        self.num_conditions = num_conditions
        self.max_count = max_count
        self.out_dim = out_dim
        # one table for all conditions, offset per column, so the look-up is a single gather
        self.table = nn.Embedding(num_conditions * (max_count + 1), out_dim)
        self.register_buffer("offsets", torch.arange(num_conditions) * (max_count + 1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, counts: Tensor) -> Tensor:
        """Embed the counts.

        Shapes:
            counts: (num_graphs, num_conditions), integer.
            output: (num_graphs, out_dim).
        """
        if self.num_conditions == 0:
            return counts.new_zeros((counts.shape[0], self.out_dim), dtype=self.table.weight.dtype)
        index = counts.long().clamp(0, self.max_count) + self.offsets
        return self.table(index).sum(dim=1)


class ConditionalLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are predicted from a per-event condition vector.

    ``y = LN(x) * (1 + gamma(c)) + beta(c)`` where ``gamma`` and ``beta`` come from one
    linear map of the condition ``c``. Its weight starts small (std 0.01) rather than at
    zero, so that the count embedding receives a gradient from the first step.

    Args:
        dim: size of the normalised features.
        condition_dim: size of the condition vector.
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, *, condition_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.modulation = nn.Linear(condition_dim, 2 * dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.modulation.weight, std=0.01)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, condition: Tensor, *, index: Tensor | None = None) -> Tensor:
        """Normalise ``x`` and apply the condition's scale and shift.

        Args:
            x: node states, either flat (num_nodes, D) or padded (num_graphs, N, D).
            condition: (num_graphs, condition_dim), one vector per event.
            index: for flat ``x``, the event of each node (``batch.batch``); ``None`` for padded ``x``.

        Shapes:
            output: same as ``x``.
        """
        scale, shift = self.modulation(condition).chunk(2, dim=-1)  # (num_graphs, D) each
        if index is not None:
            scale, shift = scale[index], shift[index]  # (num_nodes, D)
        else:
            scale, shift = scale.unsqueeze(-2), shift.unsqueeze(-2)  # (num_graphs, 1, D)
        return self.norm(x) * (1 + scale) + shift
