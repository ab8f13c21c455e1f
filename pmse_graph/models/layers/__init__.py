"""Building blocks of the encoders: attention message passing, conditional LayerNorm, pooling."""

from pmse_graph.models.layers.conditional_norm import ConditionalLayerNorm, CountEmbedding
from pmse_graph.models.layers.edge_attention import DenseEdges, EdgeAttentionConv, SparseEdges, densify_edges
from pmse_graph.models.layers.feed_forward import FeedForward
from pmse_graph.models.layers.pooling import AttentionPooling

__all__ = [
    "AttentionPooling",
    "ConditionalLayerNorm",
    "CountEmbedding",
    "DenseEdges",
    "EdgeAttentionConv",
    "FeedForward",
    "SparseEdges",
    "densify_edges",
]
