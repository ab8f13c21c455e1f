"""Shipped configuration files: found in the checkout and through the packaged link."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmse_graph import resources
from pmse_graph.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_configs_dir_is_checkout_folder():
    assert resources.configs_dir() == REPO_ROOT / "configs"


def test_packaged_link_reaches_same_files():
    # wheels carry configs/ as package data under pmse_graph/_configs
    packaged = REPO_ROOT / "pmse_graph" / "_configs" / "detector" / "besiii.yaml"
    assert packaged.resolve() == resources.config_path("detector", "besiii.yaml").resolve()


def test_missing_config_names_path():
    with pytest.raises(ConfigError, match="no_such_file.yaml"):
        resources.config_path("schema", "no_such_file.yaml")
