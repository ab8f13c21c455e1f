"""Tests of the benchmark configuration and its shipped YAML."""

from __future__ import annotations

import pytest

from pmse_graph.benchmark.config import BenchConfig
from pmse_graph.benchmark.suite import encoder_configs, simulate_events
from pmse_graph.config import load_config, parse_config
from pmse_graph.data.schema import load_schema
from pmse_graph.errors import ConfigError
from pmse_graph.models import ModelInputSpec, build_encoder, count_parameters
from pmse_graph.resources import config_path


def test_shipped_config_has_both_sizes():
    config = load_config(BenchConfig, config_path("bench.yaml"))
    default, tiny = config.size(tiny=False), config.size(tiny=True)
    assert default.k_values == [99, 1000]
    assert default.top == 99
    assert tiny.pretrain_events < default.pretrain_events


def test_scale_multiplies_event_counts():
    config = load_config(BenchConfig, config_path("bench.yaml"))
    scaled = config.size(tiny=False, scale=2.0)
    assert scaled.pretrain_events == 2 * config.sizes["default"].pretrain_events
    assert scaled.epochs == config.sizes["default"].epochs


def test_invalid_scale_raises():
    config = load_config(BenchConfig, config_path("bench.yaml"))
    with pytest.raises(ConfigError, match="--scale"):
        config.size(tiny=True, scale=0.0)


def test_unknown_key_raises():
    with pytest.raises(ConfigError, match="epoch"):
        parse_config(BenchConfig, {"sizes": {"tiny": {"epoch": 3}}})


def test_transformers_match_graph_parameters():
    config = load_config(BenchConfig, config_path("bench.yaml"))
    spec = ModelInputSpec.from_schema(load_schema("besiii"))
    encoders = encoder_configs(config, spec)
    counts = {name: count_parameters(build_encoder(encoder, spec)) for name, encoder in encoders.items()}
    assert set(counts) == {"graph", "transformer", "transformer_pair_bias"}
    assert encoders["transformer_pair_bias"].pair_bias
    assert not encoders["transformer"].pair_bias
    for name in ("transformer", "transformer_pair_bias"):
        assert abs(counts[name] - counts["graph"]) / counts["graph"] < 0.1, counts


def test_reused_events_of_other_size_raise(tmp_path):
    (tmp_path / "topology.csv").write_text("id,tree,final_state,count\n0,J/psi --> e+ e-,J/psi ---> e+ e-,10\n")
    with pytest.raises(ConfigError, match="contains 10 generated events"):
        simulate_events(num_events=20, seed=1, out=tmp_path)
    assert simulate_events(num_events=10, seed=1, out=tmp_path) == tmp_path
