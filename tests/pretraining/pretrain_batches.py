"""Hand-built PyG batches and tiny configs shared by the pretraining tests."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from pmse_graph.models.spec import ModelInputSpec
from pmse_graph.pretraining.config import PretrainConfig

NUM_FEATURES = 6
GROUPS = {"kinematics": [0, 1, 2], "emc": [3, 4, 5]}
CARDINALITIES = [4, 6]
CATEGORICAL_NAMES = ["charge", "pid_type"]
NUM_EDGE_FEATURES = 5


def tiny_spec() -> ModelInputSpec:
    """Input sizes matching :func:`make_batch`."""
    return ModelInputSpec(
        num_node_features=NUM_FEATURES,
        categorical_cardinalities=tuple(CARDINALITIES),
        num_edge_features=NUM_EDGE_FEATURES,
        feature_groups={name: tuple(columns) for name, columns in GROUPS.items()},
        categorical_names=tuple(CATEGORICAL_NAMES),
    )


def make_event(rng: np.random.Generator, *, label: int, num_particles: int, event_id: int) -> Data:
    """One event whose features depend on its class, so the losses can learn something."""
    centre = np.sin(np.arange(NUM_FEATURES) * (label + 1.0))
    x = centre + 0.3 * rng.standard_normal((num_particles, NUM_FEATURES))
    x_cat = np.stack([(np.arange(num_particles) + label) % CARDINALITIES[0], np.full(num_particles, label % CARDINALITIES[1])], axis=1)
    source, target = np.meshgrid(np.arange(num_particles), np.arange(num_particles), indexing="ij")
    off_diagonal = source != target
    edge_index = np.stack([source[off_diagonal], target[off_diagonal]])
    edge_attr = (x[edge_index[0], :NUM_EDGE_FEATURES] - x[edge_index[1], :NUM_EDGE_FEATURES]) ** 2
    cond = np.array([[num_particles // 2, num_particles - num_particles // 2, num_particles // 2, 0]])
    return Data(
        x=torch.tensor(x, dtype=torch.float32),
        x_cat=torch.tensor(x_cat, dtype=torch.long),
        edge_index=torch.tensor(edge_index, dtype=torch.long),
        edge_attr=torch.tensor(edge_attr, dtype=torch.float32),
        cond=torch.tensor(cond, dtype=torch.long),
        y=torch.tensor([label]),
        y_fs=torch.tensor([label // 2]),
        event_id=torch.tensor([event_id], dtype=torch.int64),
    )


def make_batch(*, num_events: int = 12, num_classes: int = 3, seed: int = 0, sizes: list[int] | None = None) -> Batch:
    """A batch of ``num_events`` events of 1-7 particles (or the given sizes) from ``num_classes`` classes."""
    rng = np.random.default_rng(seed)
    sizes = sizes if sizes is not None else list(rng.integers(1, 8, size=num_events))
    events = [
        make_event(rng, label=index % num_classes, num_particles=int(size), event_id=seed * 1000 + index)
        for index, size in enumerate(sizes)
    ]
    return Batch.from_data_list(events)


def tiny_config(**overrides) -> PretrainConfig:
    """A small, fast configuration; ``overrides`` are dotted keys."""
    from pmse_graph.config import apply_overrides

    base = PretrainConfig.model_validate(
        {
            "encoder": {"kind": "graph", "depth": 1, "width": 16, "heads": 2, "pooling_heads": 2, "edge_width": 8, "condition_width": 8, "categorical_width": 4},
            "heads": {"projection_hidden": 16, "projection_dim": 8},
            "data": {"batch_size": 12},
            "optim": {"lr": 3e-3, "warmup_steps": 2, "weight_decay": 0.0},
            "loss": {"msn": {"enabled": True, "num_prototypes": 8}, "supcon": {"include_target_view": True}},
            "epochs": 2,
            "device": "cpu",
            "log_every": 1,
        }
    )
    return apply_overrides(base, overrides)


