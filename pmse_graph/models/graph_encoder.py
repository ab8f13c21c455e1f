"""The graph encoder: attention message passing over the particle graph.

Particles are nodes, ordered pairs are edges carrying pair features (pair mass,
opening angle, kT, momentum fraction). Each pre-norm residual block runs
:class:`~pmse_graph.models.layers.EdgeAttentionConv` and a feed-forward layer,
both behind a conditional LayerNorm driven by the per-event counts. Attention
pooling with a learned query gives the event embedding. Pair features reach every
attention logit, which is how the encoder can see a resonance (rho, omega) in
the mass of a particle pair.
"""

from __future__ import annotations

from torch import Tensor, nn

from pmse_graph.models.base import Encoder, EncoderOutput, check_batch
from pmse_graph.models.config import EncoderConfig
from pmse_graph.models.embedding import EdgeEmbedding, NodeEmbedding
from pmse_graph.models.layers import (
    AttentionPooling,
    ConditionalLayerNorm,
    CountEmbedding,
    DenseEdges,
    EdgeAttentionConv,
    FeedForward,
    SparseEdges,
    densify_edges,
)
from pmse_graph.models.spec import ModelInputSpec


class GraphEncoderBlock(nn.Module):
    """Pre-norm residual block: message passing, then a feed-forward layer.

    Args:
        attention: the message-passing operator, called as ``attention(x, edge_index, edge_attr)``
            for sparse edges and ``attention.forward_dense(x, edges)`` for dense ones.
        feed_forward: the position-wise feed-forward layer.
        dim: node state size D.
        condition_dim: size of the per-event condition vector.
        dropout: dropout on the attention branch, default 0.
    """

    def __init__(self, *, attention: nn.Module, feed_forward: nn.Module, dim: int, condition_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention_norm = ConditionalLayerNorm(dim, condition_dim=condition_dim)
        self.attention = attention
        self.dropout = nn.Dropout(dropout)
        self.feed_forward_norm = ConditionalLayerNorm(dim, condition_dim=condition_dim)
        self.feed_forward = feed_forward

    def forward(self, x: Tensor, edges: SparseEdges | DenseEdges, condition: Tensor, node_graph: Tensor) -> Tensor:
        """Shapes: x (num_nodes, D), condition (num_graphs, condition_dim), node_graph (num_nodes,) -> (num_nodes, D)."""
        normed = self.attention_norm(x, condition, index=node_graph)
        if isinstance(edges, DenseEdges):
            attended = self.attention.forward_dense(normed, edges)
        else:
            attended = self.attention(normed, edges.edge_index, edges.edge_attr)
        x = x + self.dropout(attended)
        return x + self.feed_forward(self.feed_forward_norm(x, condition, index=node_graph))


class GraphEncoder(Encoder):
    """Attention message-passing encoder of particle graphs.

    Args:
        config: architecture (``kind`` must be ``"graph"``).
        spec: input sizes from the data schema.
    """

    def __init__(self, *, config: EncoderConfig, spec: ModelInputSpec) -> None:
        super().__init__()
        if config.kind != "graph":
            raise ValueError(f"GraphEncoder needs config.kind='graph' (got {config.kind!r})")
        self.config = config
        self.spec = spec
        self.embed_dim = config.width
        self.count_embedding = CountEmbedding(
            num_conditions=spec.num_conditions, max_count=config.max_count, out_dim=config.condition_width
        )
        self.node_embedding = NodeEmbedding(spec, out_dim=config.width, categorical_width=config.categorical_width)
        self.edge_embedding = EdgeEmbedding(num_edge_features=spec.num_edge_features, out_dim=config.edge_width, feature_names=spec.edge_feature_names)
        self.blocks = nn.ModuleList(
            GraphEncoderBlock(
                attention=EdgeAttentionConv(
                    config.width, heads=config.heads, edge_dim=config.edge_width, attention_dropout=config.attention_dropout
                ),
                feed_forward=FeedForward(config.width, hidden=config.ffn_hidden, dropout=config.dropout),
                dim=config.width,
                condition_dim=config.condition_width,
                dropout=config.dropout,
            )
            for _ in range(config.depth)
        )
        self.final_norm = ConditionalLayerNorm(config.width, condition_dim=config.condition_width)
        self.pooling = AttentionPooling(config.width, heads=config.pooling_heads)

    def forward(self, batch, node_mask: Tensor | None = None) -> EncoderOutput:
        """Encode a batch of particle graphs.

        Args:
            batch: PyG ``Batch`` with ``x`` (standardised continuous features), ``x_cat``
                (categorical features), ``edge_index`` (ordered pairs within each event, no
                self-loops), ``edge_attr`` (pair features), ``cond`` (counts: charged, neutral,
                good charged, good neutral) and ``batch`` (event of each node).
            node_mask: True = masked particle: its input is replaced by the mask token and its
                edges by the edge-mask embedding. ``None`` masks nothing.

        Shapes:
            x: (num_nodes, F); x_cat: (num_nodes, C); edge_index: (2, num_edges);
            edge_attr: (num_edges, E); cond: (num_graphs, 4); node_mask: (num_nodes,).
            output: node_states (num_nodes, D), event_embedding (num_graphs, D).

        Raises:
            DataError: if a batch tensor does not match the spec the encoder was built for.
        """
        check_batch(batch, self.spec, node_mask)
        num_nodes, num_graphs = batch.x.shape[0], batch.num_graphs
        node_graph = batch.batch

        condition = self.count_embedding(batch.cond)
        x = self.node_embedding(batch.x, batch.x_cat, node_mask)
        edge_index, edge_attr = self.edge_embedding(batch.edge_attr, batch.edge_index, num_nodes=num_nodes, node_mask=node_mask)
        if self.config.graph_attention == "dense":
            edges = densify_edges(edge_index, edge_attr, node_graph, num_graphs=num_graphs)
        else:
            edges = SparseEdges(edge_index, edge_attr)

        for block in self.blocks:
            x = block(x, edges, condition, node_graph)
        x = self.final_norm(x, condition, index=node_graph)
        return EncoderOutput(node_states=x, event_embedding=self.pooling(x, node_graph, num_graphs=num_graphs))
