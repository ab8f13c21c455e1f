"""Validated configuration objects and their YAML serialisation.

Every component keeps its settings in one pydantic model derived from
:class:`StrictModel`, so unknown keys are rejected with their full path
(``model.heads`` rather than a bare ``KeyError``). YAML files in ``configs/``
are only the serialised form of these models. Command-line options override the
file through :func:`apply_overrides`, and runs write the resolved object back
with :func:`dump_yaml`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pmse_graph.atomic import atomic_write_text
from pmse_graph.errors import ConfigError

ModelT = TypeVar("ModelT", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for config objects: unknown keys are errors, fields are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def format_validation_error(error: ValidationError, source: str) -> str:
    """Turn a pydantic error into one line per problem, each naming the field path."""
    lines = [f"Invalid configuration in {source}:"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {path}: unknown key (check the spelling against the documented fields)")
        else:
            lines.append(f"  {path}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; raise :class:`ConfigError` naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Configuration file not found: {path}")
    try:
        with path.open() as stream:
            content = yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Invalid YAML in {path}: {exc}") from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"Expected a mapping at the top of {path} (got {type(content).__name__})")
    return content


def parse_config(model: type[ModelT], data: dict[str, Any], source: str = "<dict>") -> ModelT:
    """Validate ``data`` into ``model``; raise :class:`ConfigError` with field paths."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def load_config(model: type[ModelT], path: str | os.PathLike[str]) -> ModelT:
    """Load and validate one YAML file into ``model``."""
    return parse_config(model, load_yaml(path), source=str(path))


def apply_overrides(config: ModelT, overrides: dict[str, Any]) -> ModelT:
    """Return a copy of ``config`` with dotted-path overrides applied and re-validated.

    ``{"optim.lr": 1e-3, "epochs": 5}`` sets nested fields. Values of ``None``
    are skipped, so unset command-line options leave the file's value alone.
    """
    data = config.model_dump(mode="python")
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"Unknown configuration section '{part}' in override '{dotted}'")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"Unknown configuration key '{dotted}'")
        node[parts[-1]] = value
    return parse_config(type(config), data, source="command-line overrides")


def dump_yaml(config: BaseModel, path: str | os.PathLike[str]) -> None:
    """Write the resolved ``config`` as YAML, atomically."""
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    atomic_write_text(path, text)
