"""Location of the YAML files in ``configs/`` that the package reads by default.

A source checkout or an editable install reads ``configs/`` beside the package.
A built wheel carries the same files as package data under ``pmse_graph/_configs``
(a link to ``configs/`` in the source tree), so defaults work from either.
"""

from __future__ import annotations

from pathlib import Path

from pmse_graph.errors import ConfigError

_CHECKOUT_DIR = Path(__file__).resolve().parents[1] / "configs"
_PACKAGED_DIR = Path(__file__).resolve().parent / "_configs"


def configs_dir() -> Path:
    """Return the folder of the shipped configuration files."""
    for candidate in (_CHECKOUT_DIR, _PACKAGED_DIR):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        f"Configuration folder not found: looked for {_CHECKOUT_DIR} and {_PACKAGED_DIR}. "
        "Reinstall pmse-graph, or pass configuration paths explicitly."
    )


def config_path(*parts: str) -> Path:
    """Return the path of a shipped configuration file, e.g. ``config_path("schema", "besiii.yaml")``."""
    path = configs_dir().joinpath(*parts)
    if not path.exists():
        raise ConfigError(f"Shipped configuration file not found: {path}")
    return path
