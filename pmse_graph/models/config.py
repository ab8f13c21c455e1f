"""Configuration of the event encoders: :class:`EncoderConfig`.

One validated object selects and sizes either encoder. The graph encoder
(``kind="graph"``) runs attention message passing over the particle graph. The
transformer baseline (``kind="transformer"``) runs dense self-attention over the
padded particle sequence with a CLS token, as in the Particle MSE reference
design. Input sizes are not part of this config: they come from the data schema
through :class:`pmse_graph.models.factory.ModelInputSpec`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pmse_graph.config import StrictModel

EncoderKind = Literal["graph", "transformer"]
PoolingKind = Literal["attention", "cls"]
GraphAttentionPath = Literal["sparse", "dense"]


class EncoderConfig(StrictModel):
    """Architecture of one encoder. Every size is a model hyperparameter, not a data size.

    Attributes:
        kind: ``"graph"`` for the message-passing encoder, ``"transformer"`` for the dense baseline.
        depth: number of residual blocks (attention + feed-forward).
        width: node state size D; must be divisible by ``heads``.
        heads: attention heads per block.
        ffn_ratio: hidden size of the feed-forward layer as a multiple of ``width``.
        dropout: dropout on residual branches and inside the feed-forward layer.
        attention_dropout: dropout on attention weights.
        edge_width: size of the learned pair-feature embedding shared by all blocks.
        pair_bias: transformer only: add the pair-feature embedding as a per-head attention
            bias (the graph encoder always uses pair features).
        pooling: ``"attention"`` pools node states with a learned query, and ``"cls"`` reads the
            CLS token (transformer only). ``None`` picks ``"attention"`` for the graph encoder
            and ``"cls"`` for the transformer.
        pooling_heads: heads of the attention pooling.
        condition_width: size of the embedding of the four per-event counts that drives every
            conditional LayerNorm.
        max_count: counts above this value share one embedding row, so very large counts
            stay finite; negative counts are treated as 0.
        categorical_width: embedding size of each categorical input feature.
        graph_attention: graph encoder only: ``"sparse"`` runs message passing over the edge
            list, ``"dense"`` computes the same function on padded (num_graphs, N, N) tensors,
            which suits small complete graphs. Both use the same parameters.
    """

    kind: EncoderKind = "graph"
    depth: int = Field(default=4, ge=1)
    width: int = Field(default=128, ge=8)
    heads: int = Field(default=8, ge=1)
    ffn_ratio: float = Field(default=4.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    attention_dropout: float = Field(default=0.0, ge=0, lt=1)
    edge_width: int = Field(default=32, ge=1)
    pair_bias: bool = False
    pooling: PoolingKind | None = None
    pooling_heads: int = Field(default=4, ge=1)
    condition_width: int = Field(default=32, ge=1)
    # In 100,000 BESIII inclusive J/psi MC events, 99.9% have at most 8 charged tracks and the mean
    # is 3.0 photons, so 64 gives every common count its own row while bounding the table.
    max_count: int = Field(default=64, ge=1)
    categorical_width: int = Field(default=16, ge=1)
    graph_attention: GraphAttentionPath = "sparse"

    @model_validator(mode="after")
    def _check_combination(self) -> "EncoderConfig":
        if self.width % self.heads != 0:
            raise ValueError(f"width must be divisible by heads (got width={self.width}, heads={self.heads})")
        if self.width % self.pooling_heads != 0:
            raise ValueError(
                f"width must be divisible by pooling_heads (got width={self.width}, pooling_heads={self.pooling_heads})"
            )
        if self.kind == "graph" and self.pooling == "cls":
            raise ValueError("pooling='cls' needs kind='transformer'. Use pooling='attention' for the graph encoder")
        if self.kind == "transformer" and self.graph_attention != "sparse":
            raise ValueError("graph_attention='dense' applies to kind='graph' only. Leave it at 'sparse' for the transformer")
        if self.kind == "graph" and self.pair_bias:
            raise ValueError("pair_bias applies to kind='transformer' only, because the graph encoder always uses pair features")
        return self

    @property
    def resolved_pooling(self) -> PoolingKind:
        """Pooling actually used: the explicit choice, else the default of the kind."""
        if self.pooling is not None:
            return self.pooling
        return "attention" if self.kind == "graph" else "cls"

    @property
    def ffn_hidden(self) -> int:
        """Hidden size of the feed-forward layers."""
        return max(1, round(self.width * self.ffn_ratio))
