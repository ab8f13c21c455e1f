"""Atomic training checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python types only (no pickled classes), so it can
be read without trusting the file. It contains the model and optimiser state dicts, the step
and epoch counters, the resolved config as a plain dict, and every random generator's state as
tensors.
Files are written to a temporary name in the same folder and renamed, so a crash or an
interruption during the write never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmse_graph.atomic import atomic_path
from pmse_graph.errors import PmseError

CHECKPOINT_FORMAT = 1
LAST_NAME = "last.pt"


def capture_rng_state() -> dict[str, Any]:
    """Return the states of Python's, NumPy's and torch's generators as tensors and plain types."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": torch.tensor(python_state, dtype=torch.int64),
        "python_version": int(version),
        "python_gauss": gauss,
        "numpy_kind": str(kind),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_position": int(position),
        "numpy_has_gauss": int(has_gauss),
        "numpy_cached": float(cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`capture_rng_state`."""
    python_state = tuple(int(value) for value in state["python"].tolist())
    random.setstate((state["python_version"], python_state, state["python_gauss"]))
    np.random.set_state(
        (
            state["numpy_kind"],
            state["numpy_keys"].numpy().astype(np.uint32),
            state["numpy_position"],
            state["numpy_has_gauss"],
            state["numpy_cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file in the same folder, then rename).

    Args:
        path: destination file.
        payload: tensors and plain types only; a ``format`` key is added.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp_path, open(tmp_path, "wb") as stream:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, stream)
        stream.flush()
        os.fsync(stream.fileno())
    return path


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises:
        PmseError: when the file is missing, unreadable, or of an unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise PmseError(f"Checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise PmseError(f"Failed to read checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise PmseError(f"Checkpoint {path} has format {found!r}, but this version of pmse-graph reads format {CHECKPOINT_FORMAT}. Pretrain again with this version to get a readable checkpoint.")
    return payload


def epoch_checkpoint_name(epoch: int) -> str:
    """Return the file name of the checkpoint written at the end of ``epoch`` (0-based)."""
    return f"epoch_{epoch:04d}.pt"
