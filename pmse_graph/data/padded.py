"""Dense padded tensors with a mask, the input form of the transformer baseline.

:func:`to_padded` rearranges a graph batch from :func:`pmse_graph.data.graphs.build_batch`
into (B, N, ...) tensors, N being the largest event in the batch. ``pair[b, i, j]``
contains the features of the edge from particle j (source) to particle i (target),
so row i collects what particle i receives, as a query row of attention does.
Pairs without an edge (padding, the diagonal, pairs a kNN graph left out) hold zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_geometric.data import Batch


@dataclass
class PaddedBatch:
    """A batch of events as padded tensors.

    Attributes:
        x: node features, shape ``(B, N, F)`` float32, zeros at padding.
        x_cat: categorical indices, shape ``(B, N, C)`` int64, zeros at padding.
        mask: True for a real particle, False for padding, shape ``(B, N)`` bool.
        pair: edge features, ``pair[b, i, j]`` for the edge j -> i, shape ``(B, N, N, E)`` float32.
        cond: condition counts, shape ``(B, 4)`` int64.
        y: decay-tree class ids, shape ``(B,)`` int64.
        y_fs: final-state class ids, shape ``(B,)`` int64.
        event_id: event ids, shape ``(B,)`` int64.
        p4: four-momenta, shape ``(B, N, 4)`` float32, when the batch has them.
    """

    x: torch.Tensor
    x_cat: torch.Tensor
    mask: torch.Tensor
    pair: torch.Tensor
    cond: torch.Tensor
    y: torch.Tensor
    y_fs: torch.Tensor
    event_id: torch.Tensor
    p4: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "PaddedBatch":
        """Return a copy with every tensor moved to ``device``."""
        moved = {name: (value.to(device) if isinstance(value, torch.Tensor) else value) for name, value in vars(self).items()}
        return PaddedBatch(**moved)


def to_padded(batch: Batch, *, max_nodes: int | None = None) -> PaddedBatch:
    """Rearrange a graph batch into padded tensors.

    Args:
        batch: a batch from :func:`pmse_graph.data.graphs.build_batch`.
        max_nodes: pad to this many particles (default: the largest event); it must
            not be smaller than the largest event.

    Shapes:
        x (num_nodes, F) -> (B, N, F); edge_attr (num_edges, E) -> pair (B, N, N, E).
    """
    ptr = batch.ptr
    num_graphs = batch.num_graphs
    counts = ptr[1:] - ptr[:-1]
    largest = int(counts.max()) if num_graphs else 0
    size = largest if max_nodes is None else max_nodes
    if size < largest:
        raise ValueError(f"Expected max_nodes >= {largest}, the largest event in the batch (got {max_nodes})")

    graph = batch.batch
    local = torch.arange(batch.x.size(0)) - ptr[graph]
    mask = torch.zeros(num_graphs, size, dtype=torch.bool)
    mask[graph, local] = True

    def scatter_nodes(values: torch.Tensor) -> torch.Tensor:
        out = values.new_zeros((num_graphs, size, *values.shape[1:]))
        out[graph, local] = values
        return out

    source, target = batch.edge_index
    edge_graph = graph[target]
    pair = batch.edge_attr.new_zeros((num_graphs, size, size, batch.edge_attr.size(1)))
    pair[edge_graph, local[target], local[source]] = batch.edge_attr
    p4 = scatter_nodes(batch.p4) if "p4" in batch else None
    return PaddedBatch(x=scatter_nodes(batch.x), x_cat=scatter_nodes(batch.x_cat), mask=mask, pair=pair,
                       cond=batch.cond, y=batch.y, y_fs=batch.y_fs, event_id=batch.event_id, p4=p4)
