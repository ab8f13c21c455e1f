"""Rebuild a pretrained encoder and its input pipeline from a run folder: :func:`load_run`.

A run folder from ``pmse-graph pretrain`` contains everything needed to read new data the way the
run did and to rebuild the encoder: ``schema.yaml``, ``standardizer.json`` and checkpoints that
store the resolved config, the model input spec and the weights. Only the encoder is rebuilt
here; the pretraining heads are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from pmse_graph.data.schema import Schema, load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.errors import ConfigError, PmseError
from pmse_graph.models import Encoder, ModelInputSpec, build_encoder
from pmse_graph.pretraining.checkpoint import LAST_NAME, load_checkpoint
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.run import STANDARDIZER_NAME

logger = logging.getLogger(__name__)

Branch = Literal["online", "target"]
BRANCHES = ("online", "target")
ENCODER_PREFIX = "encoder."


@dataclass
class LoadedRun:
    """A pretraining run folder, read back.

    Attributes:
        run_dir: the run folder.
        checkpoint: the checkpoint file the weights came from.
        config: the run's resolved configuration.
        schema: the event schema the run read its data with.
        standardizer: the run's standardisation of the continuous features.
        spec: input sizes the encoder was built for.
        encoder: the encoder with the checkpoint's weights, in eval mode.
        step: optimiser step at which the checkpoint was written.
    """

    run_dir: Path
    checkpoint: Path
    config: PretrainConfig
    schema: Schema
    standardizer: Standardizer
    spec: ModelInputSpec
    encoder: Encoder
    step: int


def _encoder_state(payload: dict, branch: Branch, checkpoint: Path) -> dict[str, torch.Tensor]:
    state = payload["model"] if branch == "online" else payload.get("target") or {}
    if not state:
        raise PmseError(f"Checkpoint {checkpoint} has no {branch} weights. The run trained without an EMA target; use branch='online'")
    encoder_state = {key[len(ENCODER_PREFIX):]: value for key, value in state.items() if key.startswith(ENCODER_PREFIX)}
    if not encoder_state:
        raise PmseError(f"Checkpoint {checkpoint} has no '{ENCODER_PREFIX}*' weights in its {branch} branch")
    return encoder_state


def load_run(run_dir: str | Path, *, checkpoint: str | Path | None = None, branch: Branch = "online", device: str | torch.device = "cpu") -> LoadedRun:
    """Read a run folder and rebuild its encoder with the checkpoint's weights.

    Args:
        run_dir: folder written by ``pmse-graph pretrain``.
        checkpoint: checkpoint file; default ``run_dir/checkpoints/last.pt``.
        branch: ``"online"`` (default) for the trained encoder, ``"target"`` for its EMA copy.
        device: device the encoder is moved to (default CPU).

    Raises:
        ConfigError: ``run_dir`` is not a run folder or ``branch`` is invalid.
        PmseError: the checkpoint is missing, unreadable or does not match the schema.
    """
    if branch not in BRANCHES:
        raise ConfigError(f"Invalid branch '{branch}': expected one of {BRANCHES}")
    run_dir = Path(run_dir)
    missing = [name for name in ("schema.yaml", STANDARDIZER_NAME) if not (run_dir / name).is_file()]
    if missing:
        raise ConfigError(f"{run_dir} is not a pretraining run folder: {missing} not found. Pass the --out folder of 'pmse-graph pretrain'")
    checkpoint = Path(checkpoint) if checkpoint is not None else run_dir / "checkpoints" / LAST_NAME
    payload = load_checkpoint(checkpoint)

    # the schema copy in the run folder, not the shipped one, which may have changed since
    schema = load_schema(run_dir / "schema.yaml")
    standardizer = Standardizer.load(run_dir / STANDARDIZER_NAME)
    standardizer.check_schema(schema)
    config = PretrainConfig.model_validate(payload["config"])
    spec = ModelInputSpec(**payload["spec"])
    from_schema = ModelInputSpec.from_schema(schema)
    if (spec.num_node_features, spec.categorical_cardinalities, spec.num_edge_features) != (
        from_schema.num_node_features, from_schema.categorical_cardinalities, from_schema.num_edge_features
    ):
        raise PmseError(f"Checkpoint {checkpoint} was built for input sizes {spec}, but {run_dir / 'schema.yaml'} gives {from_schema}")

    encoder = build_encoder(config.encoder, spec)
    encoder.load_state_dict(_encoder_state(payload, branch, checkpoint))
    encoder.to(device).eval()
    step = int(payload.get("step", 0))
    logger.info("loaded the %s encoder of %s from %s (step %d)", branch, run_dir, checkpoint, step)
    return LoadedRun(run_dir=run_dir, checkpoint=checkpoint, config=config, schema=schema, standardizer=standardizer, spec=spec, encoder=encoder, step=step)


def load_encoder(run_dir: str | Path, *, checkpoint: str | Path | None = None, branch: Branch = "online", device: str | torch.device = "cpu") -> Encoder:
    """Return only the encoder of :func:`load_run`."""
    return load_run(run_dir, checkpoint=checkpoint, branch=branch, device=device).encoder


def resolve_device(choice: str) -> torch.device:
    """Map ``"auto"``, ``"cpu"`` or ``"cuda"`` to a device; ``"auto"`` takes a GPU when there is one.

    Raises:
        ConfigError: an unknown choice, or ``"cuda"`` without a GPU.
    """
    if choice not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"Invalid device '{choice}': expected auto, cpu or cuda")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Device 'cuda' requested, but torch finds no GPU. Use --device cpu or auto")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)
