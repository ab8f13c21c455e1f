"""The one place that builds encoders: :func:`build_encoder` and width matching.

:func:`build_encoder` turns an :class:`EncoderConfig` and a :class:`ModelInputSpec`
into either encoder. :func:`match_transformer_width` picks the transformer width
whose parameter count is closest to a given graph encoder's, so that the two are
compared at equal size.
"""

from __future__ import annotations

import logging
import math

import torch

from pmse_graph.models.base import Encoder
from pmse_graph.models.config import EncoderConfig
from pmse_graph.models.graph_encoder import GraphEncoder
from pmse_graph.models.heads import count_parameters
from pmse_graph.models.spec import ModelInputSpec
from pmse_graph.models.transformer import TransformerEncoder

logger = logging.getLogger(__name__)

__all__ = ["ModelInputSpec", "build_encoder", "match_transformer_width"]


def build_encoder(config: EncoderConfig, spec: ModelInputSpec) -> Encoder:
    """Build the encoder that ``config.kind`` selects, sized by ``spec``.

    Raises:
        ValueError: if ``config.kind`` is not ``"graph"`` or ``"transformer"``.
    """
    if config.kind == "graph":
        return GraphEncoder(config=config, spec=spec)
    if config.kind == "transformer":
        return TransformerEncoder(config=config, spec=spec)
    raise ValueError(f"Unknown encoder kind {config.kind!r}. Expected 'graph' or 'transformer'")


def _parameter_count(config: EncoderConfig, spec: ModelInputSpec) -> int:
    # the meta device allocates no memory, so trying many widths is cheap
    with torch.device("meta"):
        return count_parameters(build_encoder(config, spec))


def match_transformer_width(
    graph_config: EncoderConfig, spec: ModelInputSpec, *, transformer: EncoderConfig | None = None
) -> EncoderConfig:
    """Return a transformer config whose parameter count is closest to the graph encoder's.

    Only the width changes; it stays a multiple of ``heads`` and ``pooling_heads``.

    Args:
        graph_config: config of the graph encoder to match.
        spec: input sizes from the data schema.
        transformer: the transformer config to resize; default: ``graph_config`` with
            ``kind="transformer"`` and the transformer's default pooling and no pair bias.
    """
    if transformer is None:
        # graph_attention is a graph-only option: the transformer keeps its default
        transformer = EncoderConfig.model_validate(
            {**graph_config.model_dump(), "kind": "transformer", "pooling": None, "pair_bias": False, "graph_attention": "sparse"}
        )
    target = _parameter_count(graph_config, spec)

    step = math.lcm(transformer.heads, transformer.pooling_heads)
    best_width, best_gap = transformer.width, None
    width = step * max(1, (8 + step - 1) // step)
    while True:
        count = _parameter_count(transformer.model_copy(update={"width": width}), spec)
        gap = abs(count - target)
        if best_gap is None or gap < best_gap:
            best_width, best_gap = width, gap
        if count > target:
            break
        width += step

    matched = EncoderConfig.model_validate({**transformer.model_dump(), "width": best_width})
    logger.info("transformer width %d matches the graph encoder's %d parameters within %d", best_width, target, best_gap)
    return matched

