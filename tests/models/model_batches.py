"""Small hand-built particle batches and configs for the encoder tests.

Events carry random momenta. The pair features of all ordered pairs come from
``pmse_graph.physics.kinematics.pair_features``, so a permuted particle order
yields the same event with its edges in another order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from pmse_graph.models import EncoderConfig, ModelInputSpec
from pmse_graph.physics.kinematics import pair_features

PION_MASS = 0.13957


@dataclass
class Event:
    """One event's particles before batching: momenta, charge and PID categories, counts."""

    p3: np.ndarray  # (n, 3) GeV/c
    charged: np.ndarray  # (n,) bool
    pid: np.ndarray  # (n,) category in 0..4
    counts: tuple[int, int, int, int]


def make_spec() -> ModelInputSpec:
    """Spec of the test batches: 6 continuous columns, charge (4 categories) and PID type (5)."""
    return ModelInputSpec(
        num_node_features=6,
        categorical_cardinalities=(4, 5),
        num_edge_features=5,
        feature_groups={"momentum": (0, 1, 2), "energy": (3,), "present": (4, 5)},
        categorical_names=("charge", "pid_type"),
    )


def make_event(rng: np.random.Generator, *, num_charged: int, num_neutral: int) -> Event:
    """Draw one event with charged particles first, then neutrals."""
    n = num_charged + num_neutral
    charged = np.arange(n) < num_charged
    pid = np.where(charged, rng.integers(1, 5, size=n), 0)
    return Event(
        p3=rng.normal(scale=0.5, size=(n, 3)),
        charged=charged,
        pid=pid,
        counts=(num_charged, num_neutral, num_charged, num_neutral),
    )


def event_to_data(event: Event, *, order: np.ndarray | None = None) -> Data:
    """Build one fully connected particle graph, particles taken in ``order``."""
    order = np.arange(len(event.p3)) if order is None else order
    p3 = torch.tensor(event.p3[order], dtype=torch.float32)
    charged = torch.tensor(event.charged[order])
    n = p3.shape[0]
    mass = torch.where(charged, torch.tensor(PION_MASS), torch.tensor(0.0))
    energy = torch.sqrt((p3 * p3).sum(-1) + mass**2)
    x = torch.cat([p3, energy[:, None], charged[:, None].float(), (~charged)[:, None].float()], dim=1)
    charge_category = torch.where(charged, torch.tensor(1) + (p3[:, 0] > 0).long(), torch.tensor(3))
    x_cat = torch.stack([charge_category, torch.tensor(event.pid[order])], dim=1).long()

    source, target = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    off_diagonal = source != target
    edge_index = torch.stack([source[off_diagonal], target[off_diagonal]])
    edge_attr = pair_features(p3[edge_index[0]], p3[edge_index[1]], mass[edge_index[0]], mass[edge_index[1]]).float()
    return Data(
        x=x,
        x_cat=x_cat,
        edge_index=edge_index,
        edge_attr=edge_attr,
        cond=torch.tensor([event.counts], dtype=torch.long),
        y=torch.tensor([0]),
        num_nodes=n,
    )


def make_batch(events: list[Event], *, orders: list[np.ndarray] | None = None) -> Batch:
    """Collate events into one PyG batch, each in its own particle order."""
    orders = orders or [None] * len(events)
    return Batch.from_data_list([event_to_data(event, order=order) for event, order in zip(events, orders)])


# the kinds every interface test runs on: name -> config overrides
ENCODER_VARIANTS = {
    "graph": {"kind": "graph"},
    "graph_dense": {"kind": "graph", "graph_attention": "dense"},
    "transformer": {"kind": "transformer"},
    "transformer_pair_bias": {"kind": "transformer", "pair_bias": True},
    "transformer_attention_pooling": {"kind": "transformer", "pooling": "attention"},
}


def small_config(**overrides) -> EncoderConfig:
    """A small encoder config for fast tests."""
    return EncoderConfig(**{"depth": 2, "width": 32, "heads": 4, "edge_width": 8, "condition_width": 8, **overrides})
