"""Multi-head attention message passing with pair features: :class:`EdgeAttentionConv`.

The operator of the graph encoder. Each node attends over its incoming edges.
The pair features of an edge enter twice: as a learned per-head bias on the
attention logit and as a learned term added to the message. The softmax runs
over the incoming edges of each node (``torch_geometric.utils.softmax``), so the
operator works on complete graphs and on sparse (kNN) graphs alike.

:meth:`EdgeAttentionConv.forward_dense` computes the same function on padded
(num_graphs, N, N) tensors built once per batch by :func:`densify_edges`. It
avoids the per-edge (num_edges, heads, channels) gathers of the sparse path, which
suits small complete graphs. Both paths share parameters, so a checkpoint runs on either.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax, to_dense_adj, to_dense_batch


class SparseEdges(NamedTuple):
    """Edges of a batch as an edge list.

    Shapes:
        edge_index: (2, num_edges), (source, target) pairs.
        edge_attr: (num_edges, edge_dim).
    """

    edge_index: Tensor
    edge_attr: Tensor


class DenseEdges(NamedTuple):
    """Edges of a batch as padded tensors, indexed [graph, target i, source j].

    Shapes:
        edge_attr: (num_graphs, N, N, edge_dim), zero where no edge exists.
        logit_mask: (num_graphs, 1, N, N), 0 where an edge exists and -inf elsewhere. A row
            without edges (a padded slot or a node with no incoming edge) keeps its diagonal at
            0, so that its softmax stays finite.
        row_has_edges: (num_graphs, 1, N, 1), 1.0 for rows with at least one edge, else 0.0;
            it zeroes the attention of rows without edges, as the sparse path does.
        slot: (num_nodes,), the flat position (graph * N + position) of each node.
    """

    edge_attr: Tensor
    logit_mask: Tensor
    row_has_edges: Tensor
    slot: Tensor


def densify_edges(edge_index: Tensor, edge_attr: Tensor, node_graph: Tensor, *, num_graphs: int) -> DenseEdges:
    """Pad the edges of a batch into per-graph (N, N) tensors for :meth:`EdgeAttentionConv.forward_dense`.

    Args:
        edge_index: (source, target) pairs, with nodes sorted by graph as PyG batches them.
        edge_attr: edge embeddings.
        node_graph: graph of each node (``batch.batch``).
        num_graphs: number of graphs in the batch.

    Shapes:
        edge_index: (2, num_edges); edge_attr: (num_edges, edge_dim); node_graph: (num_nodes,).
    """
    _, is_node = to_dense_batch(node_graph.unsqueeze(-1), node_graph, batch_size=num_graphs)  # (B, N)
    size = is_node.shape[1]
    # to_dense_adj puts edge (j -> i) at [j, i], but attention wants [target i, source j]
    dense_attr = to_dense_adj(edge_index, node_graph, edge_attr=edge_attr, max_num_nodes=size, batch_size=num_graphs)
    has_edge = (to_dense_adj(edge_index, node_graph, max_num_nodes=size, batch_size=num_graphs) > 0).transpose(1, 2)
    row_has_edges = has_edge.any(dim=-1, keepdim=True)  # (B, N, 1)
    has_edge = has_edge | (~row_has_edges & torch.eye(size, dtype=torch.bool, device=is_node.device))
    logit_mask = torch.zeros(has_edge.shape, dtype=torch.float32, device=is_node.device).masked_fill(~has_edge, float("-inf"))
    return DenseEdges(
        edge_attr=dense_attr.transpose(1, 2),
        logit_mask=logit_mask.unsqueeze(1),
        row_has_edges=row_has_edges.unsqueeze(1).float(),
        slot=is_node.view(-1).nonzero().view(-1),
    )


class EdgeAttentionConv(MessagePassing):
    r"""Edge-biased multi-head attention over incoming edges.

    .. math::
        a_{ij}^h = \frac{q_i^h \cdot k_j^h}{\sqrt{C}} + w_h^\top e_{ij}, \qquad
        \alpha_{ij}^h = \operatorname{softmax}_{j \in \mathcal{N}(i)} a_{ij}^h, \qquad
        x_i' = W_o \big\Vert_h \sum_{j} \alpha_{ij}^h \,(v_j^h + U^h e_{ij})

    with ``C = dim / heads``. A node without incoming edges receives a zero message,
    never NaN; the encoder adds self-loops so that every node attends at least to itself.

    Args:
        dim: node state size D, divisible by ``heads``.
        heads: attention heads H.
        edge_dim: size of the edge embedding.
        attention_dropout: dropout on the attention weights, default 0.
    """

    def __init__(self, dim: int, *, heads: int, edge_dim: int, attention_dropout: float = 0.0) -> None:
        super().__init__(aggr="sum", node_dim=0)
        if dim % heads != 0:
            raise ValueError(f"Expected dim divisible by heads (got dim={dim}, heads={heads})")
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.attention_dropout = attention_dropout
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.edge_bias = nn.Linear(edge_dim, heads)
        self.edge_value = nn.Linear(edge_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.query, self.key, self.value, self.edge_bias, self.edge_value, self.out):
            layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """Attend from every node over its incoming edges.

        Args:
            x: node states.
            edge_index: (source, target) pairs; messages flow from source j to target i.
            edge_attr: edge embeddings.

        Shapes:
            x: (num_nodes, D); edge_index: (2, num_edges); edge_attr: (num_edges, edge_dim).
            output: (num_nodes, D).
        """
        shape = (-1, self.heads, self.head_dim)
        q, k, v = self.query(x).view(shape), self.key(x).view(shape), self.value(x).view(shape)  # (N, H, C)
        out = self.propagate(edge_index, q=q, k=k, v=v, edge_attr=edge_attr)  # (N, H, C)
        return self.out(out.reshape(-1, self.dim))

    def forward_dense(self, x: Tensor, edges: DenseEdges) -> Tensor:
        """Compute :meth:`forward` on padded tensors, with the same parameters.

        ``sum_j alpha_ij U e_ij`` is computed as ``U (sum_j alpha_ij e_ij)`` per head, so no
        per-edge value tensor is formed. Unlike the sparse path, a duplicated edge counts once.

        Shapes:
            x: (num_nodes, D); edges: from :func:`densify_edges`.
            output: (num_nodes, D).
        """
        num_graphs, size = edges.edge_attr.shape[:2]
        heads, head_dim = self.heads, self.head_dim
        qkv = torch.cat([self.query(x), self.key(x), self.value(x)], dim=-1)  # (num_nodes, 3D)
        padded = qkv.new_zeros(num_graphs * size, 3 * self.dim).index_copy(0, edges.slot, qkv)
        q, k, v = padded.view(num_graphs, size, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # (B, H, N, C) each

        logits = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (B, H, N, N)
        logits = logits + self.edge_bias(edges.edge_attr).permute(0, 3, 1, 2) + edges.logit_mask.to(logits.dtype)
        alpha = torch.softmax(logits, dim=-1) * edges.row_has_edges.to(logits.dtype)
        alpha = F.dropout(alpha, p=self.attention_dropout, training=self.training)

        pooled_edges = torch.einsum("bhij,bijd->bhid", alpha, edges.edge_attr.to(alpha.dtype))  # (B, H, N, edge_dim)
        edge_weight = self.edge_value.weight.view(heads, head_dim, -1).to(alpha.dtype)  # (H, C, edge_dim)
        edge_bias_term = self.edge_value.bias.view(heads, 1, head_dim).to(alpha.dtype) * edges.row_has_edges.to(alpha.dtype)
        edge_term = torch.einsum("bhid,hcd->bhic", pooled_edges, edge_weight) + edge_bias_term  # (B, H, N, C)
        out = (alpha @ v + edge_term).permute(0, 2, 1, 3).reshape(num_graphs * size, self.dim)  # (B * N, D)
        return self.out(out[edges.slot])

    def message(
        self, q_i: Tensor, k_j: Tensor, v_j: Tensor, edge_attr: Tensor, index: Tensor, ptr: Tensor | None, size_i: int | None
    ) -> Tensor:
        logits = (q_i * k_j).sum(dim=-1) / math.sqrt(self.head_dim) + self.edge_bias(edge_attr)  # (E, H)
        alpha = softmax(logits, index, ptr, size_i)
        alpha = F.dropout(alpha, p=self.attention_dropout, training=self.training)
        values = v_j + self.edge_value(edge_attr).view(-1, self.heads, self.head_dim)  # (E, H, C)
        return values * alpha.unsqueeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, heads={self.heads})"
