"""EncoderConfig validation: combinations, unknown keys, resolved defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmse_graph.config import load_config, parse_config
from pmse_graph.errors import ConfigError
from pmse_graph.models import EncoderConfig, build_encoder


def test_config_default_pooling_per_kind():
    assert EncoderConfig(kind="graph").resolved_pooling == "attention"
    assert EncoderConfig(kind="transformer").resolved_pooling == "cls"
    assert EncoderConfig(kind="transformer", pooling="attention").resolved_pooling == "attention"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"width": 100, "heads": 8}, "divisible by heads"),
        ({"width": 96, "heads": 8, "pooling_heads": 5}, "pooling_heads"),
        ({"kind": "graph", "pooling": "cls"}, "pooling='cls'"),
        ({"kind": "graph", "pair_bias": True}, "pair_bias"),
        ({"kind": "transformer", "graph_attention": "dense"}, "graph_attention"),
        ({"kind": "mlp"}, "kind"),
        ({"depth": 0}, "depth"),
        ({"dropout": 1.0}, "dropout"),
        ({"widht": 64}, "widht: unknown key"),
    ],
)
def test_config_rejects_invalid(data, fragment):
    with pytest.raises(ConfigError) as error:
        parse_config(EncoderConfig, data, source="model.yaml")

    assert fragment in str(error.value)
    assert "model.yaml" in str(error.value)


def test_config_ffn_hidden_from_ratio():
    assert EncoderConfig(width=64, heads=4, ffn_ratio=2.5).ffn_hidden == 160


PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "model").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_config_presets_build(path, spec):
    config = load_config(EncoderConfig, path)

    encoder = build_encoder(config, spec)

    assert encoder.embed_dim == config.width


def test_config_presets_found():
    assert {p.stem for p in PRESETS} >= {"graph", "transformer"}
