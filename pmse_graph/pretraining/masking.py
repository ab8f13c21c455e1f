"""Random particle masking for the masked (online) view of each event.

:func:`sample_node_mask` picks, for every event of a PyG batch at once, which particles the
online encoder replaces by a learned mask token. The rules:

* ``round(fraction * n)`` particles of an ``n``-particle event are masked,
* at least one when ``n >= 2``, so every such event contributes to the reconstruction loss,
* never all ``n``, so the event embedding always receives one real particle,
* none in a one-particle event, which has nothing left to predict the particle from.

The choice is uniform within each event and vectorised over the batch (one sort, no loop over
events). A ``torch.Generator`` makes it reproducible.

NOTE: masking replaces node features and pair features only. The per-event counts in
``batch.cond`` (charged, neutral, good charged, good neutral), which drive every conditional
LayerNorm, still count the masked particles. The encoder therefore receives how many charged and
neutral particles an event has. Together with the unmasked particles' charges and charge
conservation, that can reveal a masked particle's charge (fully so when one particle is masked),
so the ``cat/charge`` reconstruction term is easier than it looks.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pmse_graph.errors import ConfigError


def masked_counts(counts: Tensor, *, fraction: float) -> Tensor:
    """Return how many particles to mask in each event.

    Args:
        counts: particles per event, shape (num_graphs,), long.
        fraction: share of particles to mask, in (0, 1).

    Returns:
        Long tensor (num_graphs,): ``round(fraction * n)`` clamped to ``[1, n - 1]`` for
        ``n >= 2`` and 0 for ``n <= 1``.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"masking fraction must be in (0, 1) (got {fraction})")
    requested = torch.round(counts.to(torch.float64) * fraction).to(torch.long)
    upper = (counts - 1).clamp(min=0)
    return torch.minimum(requested.clamp(min=1), upper)


def sample_node_mask(
    batch_index: Tensor,
    *,
    num_graphs: int,
    fraction: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample which nodes of a batch are masked.

    Args:
        batch_index: graph index of every node (PyG ``batch``), shape (num_nodes,), sorted as
            PyG makes it (nodes of one graph contiguous).
        num_graphs: number of graphs in the batch (graphs without nodes are allowed).
        fraction: share of particles to mask per event, in (0, 1).
        generator: random generator on the device of ``batch_index``; ``None`` uses the global one.

    Returns:
        Bool tensor (num_nodes,), True = masked.

    Shapes:
        batch_index: (num_nodes,) -> mask: (num_nodes,)
    """
    device = batch_index.device
    num_nodes = batch_index.numel()
    counts = torch.bincount(batch_index, minlength=num_graphs)
    to_mask = masked_counts(counts, fraction=fraction)
    if num_nodes == 0:
        return torch.zeros(0, dtype=torch.bool, device=device)

    # order nodes by (graph, random score): sort by score, then stable sort by graph
    scores = torch.rand(num_nodes, generator=generator, device=device)
    by_score = torch.argsort(scores)
    by_graph = torch.argsort(batch_index[by_score], stable=True)
    order = by_score[by_graph]

    # rank of each node inside its graph in that random order
    starts = torch.cumsum(counts, dim=0) - counts
    rank = torch.empty(num_nodes, dtype=torch.long, device=device)
    rank[order] = torch.arange(num_nodes, device=device) - starts[batch_index[order]]
    return rank < to_mask[batch_index]
