"""Small inputs shared by the downstream and CLI tests: a generated ntuple, a tiny run, a store.

The run is a few pretraining steps of a one-layer, width-16 graph encoder, so its embeddings
are not meaningful, but every file of a real run folder is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pmse_graph.downstream.embeddings import EmbeddingWriter
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.run import run_pretraining
from tests.pretraining.generated_ntuples import write_generated

NUM_CLASSES = 6


def tiny_config() -> PretrainConfig:
    """Return a pretraining config that runs two steps of a one-layer width-16 encoder on the CPU."""
    return PretrainConfig.model_validate(
        {
            "encoder": {"kind": "graph", "depth": 1, "width": 16, "heads": 2, "pooling_heads": 2, "edge_width": 8, "condition_width": 8, "categorical_width": 4},
            "heads": {"projection_hidden": 16, "projection_dim": 8},
            "data": {"batch_size": 32, "shuffle_buffer": 32, "step_size": 200, "steps_per_epoch": 2},
            "optim": {"warmup_steps": 1},
            "epochs": 1,
            "device": "cpu",
        }
    )


def make_run(folder: Path, *, num_events: int = 240) -> tuple[Path, Path]:
    """Write a generated ntuple and pretrain on it; return (ntuple path, run folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = write_generated(folder / "events.root", num_events=num_events, num_classes=NUM_CLASSES, seed=11)
    run_dir = folder / "run"
    run_pretraining(config=tiny_config(), data=[str(data)], out=run_dir)
    return data, run_dir


# decay trees of the classes 0-7 in the topology table written by write_topology
TREES = (
    "J/psi --> rho+ pi-; rho+ --> pi+ pi0",
    "J/psi --> rho- pi+; rho- --> pi- pi0",
    "J/psi --> rho0 pi0; rho0 --> pi+ pi-",
    "J/psi --> pi0 pi+ pi-",
    "J/psi --> omega pi+ pi-; omega --> pi0 pi+ pi-",
    "J/psi --> e+ e-",
    "J/psi --> mu+ mu-",
    "J/psi --> gamma eta'; eta' --> gamma rho0; rho0 --> pi+ pi-",
)


def write_topology(path: Path) -> Path:
    """Write a ``topology.csv`` naming the classes 0-7 by :data:`TREES`, as ``simulate`` does."""
    count = np.arange(len(TREES), 0, -1) * 10
    frame = pd.DataFrame({
        "id": np.arange(len(TREES)), "tree": TREES, "final_state": [tree.split(";")[0] for tree in TREES], "count": count,
        "cumulative_count": np.cumsum(count), "final_state_id": np.arange(len(TREES)), "first_seen": np.arange(len(TREES)),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_cluster_store(
    out: Path, *, num_events: int = 600, dim: int = 16, seed: int = 0, shard_size: int = 250, metadata: dict | None = None
) -> Path:
    """Write an embedding store of Gaussian blobs, one per class, with unequal class sizes.

    Classes 0-7 hold about 30, 20, 15, 12, 10, 6, 4 and 3 percent of the events; event ids
    start at 1000. ``metadata`` goes to the index as ``embed`` would write it.
    """
    rng = np.random.default_rng(seed)
    shares = np.array([30, 20, 15, 12, 10, 6, 4, 3]) / 100
    y = rng.choice(len(shares), size=num_events, p=shares)
    centres = 3.0 * rng.normal(size=(len(shares), dim))
    vectors = centres[y] + rng.normal(size=(num_events, dim))
    with EmbeddingWriter(out, dim, shard_size=shard_size, metadata=metadata) as writer:
        writer.write(vectors.astype(np.float32), event_id=np.arange(num_events) + 1000, y=y, y_fs=y // 2)
    return out


_RUNS: dict[str, tuple[Path, Path]] = {}


def shared_run(tmp_path_factory) -> tuple[Path, Path]:
    """Return (ntuple, run folder) of one tiny run per test session, made on first use."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _RUNS:
        _RUNS[key] = make_run(tmp_path_factory.mktemp("tiny_run"))
    return _RUNS[key]
