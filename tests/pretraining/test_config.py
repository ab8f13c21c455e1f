"""Tests of the pretraining configuration and the shipped YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmse_graph.config import apply_overrides, load_config, parse_config
from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(("name", "kind"), [("pretrain_gnn.yaml", "graph"), ("pretrain_transformer.yaml", "transformer")])
def test_shipped_configs_load(name, kind):
    config = load_config(PretrainConfig, CONFIGS / name)
    assert config.encoder.kind == kind
    assert config.loss.reconstruction.enabled


def test_unknown_key_named_by_path():
    with pytest.raises(ConfigError, match="loss.supcon.temprature"):
        parse_config(PretrainConfig, {"loss": {"supcon": {"temprature": 0.1}}})


def test_overrides_and_checks():
    config = apply_overrides(PretrainConfig(), {"epochs": 3, "optim.lr": 1e-3, "data.batch_size": None})
    assert (config.epochs, config.optim.lr, config.data.batch_size) == (3, 1e-3, 256)
    with pytest.raises(ConfigError, match="precision"):
        apply_overrides(PretrainConfig(), {"precision": "fp8"})
    with pytest.raises(ConfigError, match="at least one"):
        parse_config(PretrainConfig, {"loss": {"reconstruction": {"enabled": False}, "supcon": {"enabled": False}}})
    with pytest.raises(ConfigError, match="target_temperature"):
        parse_config(PretrainConfig, {"loss": {"msn": {"enabled": True, "target_temperature": 0.5}}})
