"""build_encoder and matching the transformer's size to the graph encoder's."""

from __future__ import annotations

import pytest
from tests.models.model_batches import small_config

from pmse_graph.models import EncoderConfig, GraphEncoder, TransformerEncoder, build_encoder, count_parameters, match_transformer_width


def test_build_encoder_selects_kind(spec):
    assert isinstance(build_encoder(small_config(kind="graph"), spec), GraphEncoder)
    assert isinstance(build_encoder(small_config(kind="transformer"), spec), TransformerEncoder)


def test_encoder_embed_dim_is_width(spec):
    assert build_encoder(small_config(kind="graph", width=48), spec).embed_dim == 48
    assert build_encoder(small_config(kind="transformer", width=48), spec).embed_dim == 48


@pytest.mark.parametrize(("width", "depth"), [(64, 2), (128, 4)])
def test_parameter_counts_comparable(spec, width, depth):
    graph = count_parameters(build_encoder(EncoderConfig(kind="graph", width=width, depth=depth), spec))
    transformer = count_parameters(build_encoder(EncoderConfig(kind="transformer", width=width, depth=depth), spec))
    print(f"width {width} depth {depth}: graph {graph} parameters, transformer {transformer}")

    assert abs(graph - transformer) / graph < 0.20


def test_match_transformer_width_is_closest(spec):
    graph_config = EncoderConfig(kind="graph", width=64, depth=2, heads=4)
    target = count_parameters(build_encoder(graph_config, spec))

    matched = match_transformer_width(graph_config, spec)

    assert matched.kind == "transformer"
    assert matched.width % matched.heads == 0
    count = count_parameters(build_encoder(matched, spec))
    for neighbour in (matched.width - matched.heads, matched.width + matched.heads):
        other = count_parameters(build_encoder(matched.model_copy(update={"width": neighbour}), spec))
        assert abs(count - target) <= abs(other - target)
    assert abs(count - target) / target < 0.05


def test_match_transformer_width_accepts_dense_graph_attention(spec):
    sparse = EncoderConfig(kind="graph", width=64, depth=2, heads=4, graph_attention="sparse")
    dense = sparse.model_copy(update={"graph_attention": "dense"})

    matched = match_transformer_width(dense, spec)

    assert matched.kind == "transformer"
    assert matched.graph_attention == "sparse"
    # both attention paths share their parameters, so they match the same width
    assert matched.width == match_transformer_width(sparse, spec).width
