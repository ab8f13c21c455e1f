"""Detector configuration: the default file and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pmse_graph.errors import ConfigError
from pmse_graph.simulation.detector import DetectorConfig, DetectorResponse, default_config_path, load_detector_config

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_default_path_is_the_configs_file():
    assert default_config_path() == REPO_ROOT / "configs" / "detector" / "besiii.yaml"


def test_default_config_validates():
    config = load_detector_config()
    assert isinstance(config, DetectorConfig)
    assert config.mdc.max_abs_cos_theta == 0.93
    assert config.selection.good_photon.min_angle_to_track_deg == 10.0


def test_explicit_path_and_retuned_value(tmp_path):
    data = yaml.safe_load(default_config_path().read_text())
    data["emc"]["cluster_threshold_gev"] = 0.05
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump(data))
    assert DetectorResponse.from_config(path).config.emc.cluster_threshold_gev == 0.05


def test_unknown_key_names_its_path(tmp_path):
    data = yaml.safe_load(default_config_path().read_text())
    data["mdc"]["efficency"] = 0.9
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"mdc\.efficency: unknown key"):
        load_detector_config(path)


def test_out_of_range_value_is_rejected(tmp_path):
    data = yaml.safe_load(default_config_path().read_text())
    data["mdc"]["efficiency"] = 1.5
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"mdc\.efficiency"):
        load_detector_config(path)


def test_all_zero_priors_are_rejected(tmp_path):
    data = yaml.safe_load(default_config_path().read_text())
    data["pid"]["prior"] = {"e": 0, "mu": 0, "pi": 0, "K": 0, "p": 0}
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="positive hypothesis weight"):
        load_detector_config(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_detector_config(tmp_path / "absent.yaml")
