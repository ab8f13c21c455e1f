"""The transformer baseline: dense self-attention over the padded particle sequence.

Follows the reference design of Particle MSE: particles form a padded sequence
with a padding mask, a learned CLS token is prepended, and standard multi-head
self-attention blocks run behind the same conditional LayerNorm as the graph
encoder. It uses no pair features by default. With ``pair_bias=True``, the edge
embedding of the graph encoder becomes a per-head attention bias, which separates
the effect of pair features from the effect of the architecture.

The encoder takes the same PyG batch as the graph encoder, pads it internally
(``to_dense_batch``, ``to_dense_adj``) and returns node states flattened back to
the batch's node order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import to_dense_adj, to_dense_batch

from pmse_graph.models.base import Encoder, EncoderOutput, check_batch
from pmse_graph.models.config import EncoderConfig
from pmse_graph.models.embedding import EdgeEmbedding, NodeEmbedding
from pmse_graph.models.layers import AttentionPooling, ConditionalLayerNorm, CountEmbedding, FeedForward
from pmse_graph.models.spec import ModelInputSpec


class SelfAttention(nn.Module):
    """Multi-head self-attention with an additive bias (``scaled_dot_product_attention``).

    Args:
        dim: token size D, divisible by ``heads``.
        heads: attention heads H.
        attention_dropout: dropout on the attention weights, default 0.
    """

    def __init__(self, dim: int, *, heads: int, attention_dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"Expected dim divisible by heads (got dim={dim}, heads={heads})")
        self.heads = heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """Shapes: x (B, L, D), bias broadcastable to (B, H, L, L) with -inf at padded keys -> (B, L, D)."""
        batch_size, length, dim = x.shape
        qkv = self.qkv(x).view(batch_size, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)  # (3, B, H, L, C)
        dropout = self.attention_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias.to(qkv.dtype), dropout_p=dropout)
        return self.out(out.transpose(1, 2).reshape(batch_size, length, dim))  # (B, L, D)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: self-attention, then a feed-forward layer.

    Args:
        attention: self-attention, called as ``attention(x, bias)``.
        feed_forward: the position-wise feed-forward layer.
        dim: token size D.
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

    def forward(self, x: Tensor, bias: Tensor, condition: Tensor) -> Tensor:
        """Shapes: x (B, L, D), bias (B, H or 1, L, L), condition (B, condition_dim) -> (B, L, D)."""
        x = x + self.dropout(self.attention(self.attention_norm(x, condition), bias))
        return x + self.feed_forward(self.feed_forward_norm(x, condition))


class TransformerEncoder(Encoder):
    """Transformer baseline on padded particle sequences with a CLS token.

    Args:
        config: architecture (``kind`` must be ``"transformer"``).
        spec: input sizes from the data schema.
    """

    no_weight_decay = ("cls_token",)
    """Learned tokens exempt from weight decay (see :mod:`pmse_graph.pretraining.optimizer`)."""

    def __init__(self, *, config: EncoderConfig, spec: ModelInputSpec) -> None:
        super().__init__()
        if config.kind != "transformer":
            raise ValueError(f"TransformerEncoder needs config.kind='transformer' (got {config.kind!r})")
        self.config = config
        self.spec = spec
        self.embed_dim = config.width
        self.count_embedding = CountEmbedding(
            num_conditions=spec.num_conditions, max_count=config.max_count, out_dim=config.condition_width
        )
        self.node_embedding = NodeEmbedding(spec, out_dim=config.width, categorical_width=config.categorical_width)
        self.cls_token = nn.Parameter(torch.empty(config.width))
        nn.init.normal_(self.cls_token, std=0.02)
        self.edge_embedding: EdgeEmbedding | None = None
        self.pair_bias = nn.ModuleList()
        if config.pair_bias:
            self.edge_embedding = EdgeEmbedding(num_edge_features=spec.num_edge_features, out_dim=config.edge_width, feature_names=spec.edge_feature_names)
            self.pair_bias = nn.ModuleList(nn.Linear(config.edge_width, config.heads) for _ in range(config.depth))
        self.blocks = nn.ModuleList(
            TransformerBlock(
                attention=SelfAttention(config.width, heads=config.heads, attention_dropout=config.attention_dropout),
                feed_forward=FeedForward(config.width, hidden=config.ffn_hidden, dropout=config.dropout),
                dim=config.width,
                condition_dim=config.condition_width,
                dropout=config.dropout,
            )
            for _ in range(config.depth)
        )
        self.final_norm = ConditionalLayerNorm(config.width, condition_dim=config.condition_width)
        self.pooling = AttentionPooling(config.width, heads=config.pooling_heads) if config.resolved_pooling == "attention" else None

    def forward(self, batch, node_mask: Tensor | None = None) -> EncoderOutput:
        """Encode a batch of events given as a PyG batch.

        Args:
            batch: PyG ``Batch`` as for the graph encoder (``x``, ``x_cat``, ``edge_index``,
                ``edge_attr``, ``cond``, ``batch``), with nodes sorted by event as PyG builds it.
                ``edge_index`` and ``edge_attr`` are used only with ``pair_bias=True``.
            node_mask: True = masked particle: its input is replaced by the mask token and, with
                a pair bias, its pairs by the edge-mask embedding. ``None`` masks nothing.

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

        # pad to (B, N, D) and prepend the CLS token (in the padding mask, True = real particle)
        condition = self.count_embedding(batch.cond)
        x = self.node_embedding(batch.x, batch.x_cat, node_mask)
        dense, is_particle = to_dense_batch(x, node_graph, batch_size=num_graphs)  # (B, N, D), (B, N)
        max_particles = dense.shape[1]
        cls = self.cls_token.to(dense.dtype).expand(num_graphs, 1, -1)
        tokens = torch.cat([cls, dense], dim=1)  # (B, L, D), L = N + 1
        is_token = torch.cat([is_particle.new_ones(num_graphs, 1), is_particle], dim=1)  # (B, L)
        key_bias = torch.zeros(is_token.shape, dtype=torch.float32, device=tokens.device)
        key_bias = key_bias.masked_fill(~is_token, float("-inf"))[:, None, None, :]  # (B, 1, 1, L)

        # pair embeddings as (B, query, key, edge_width): edge (j -> i) sits at [i, j]
        pairs = None
        if self.edge_embedding is not None:
            edge_index, edge_attr = self.edge_embedding(batch.edge_attr, batch.edge_index, num_nodes=num_nodes, node_mask=node_mask)
            pairs = to_dense_adj(edge_index, node_graph, edge_attr=edge_attr, max_num_nodes=max_particles, batch_size=num_graphs)
            pairs = pairs.transpose(1, 2)  # (B, N, N, edge_width)

        for layer, block in enumerate(self.blocks):
            bias = key_bias
            if pairs is not None:
                pair_bias = self.pair_bias[layer](pairs).permute(0, 3, 1, 2)  # (B, H, N, N)
                bias = key_bias + F.pad(pair_bias, (1, 0, 1, 0))  # (B, H, L, L), zero bias on CLS rows and columns
            tokens = block(tokens, bias, condition)
        tokens = self.final_norm(tokens, condition)

        node_states = tokens[:, 1:][is_particle]  # (num_nodes, D) in batch order
        if self.pooling is None:
            event_embedding = tokens[:, 0]
        else:
            event_embedding = self.pooling(node_states, node_graph, num_graphs=num_graphs)
        return EncoderOutput(node_states=node_states, event_embedding=event_embedding)
