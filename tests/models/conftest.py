"""Fixtures of the model tests: a spec and a batch with 1-particle, 0-neutral and large events."""

from __future__ import annotations

import numpy as np
import pytest
from tests.models.model_batches import Event, make_batch, make_event, make_spec
from torch_geometric.data import Batch

from pmse_graph.models import ModelInputSpec


@pytest.fixture
def spec() -> ModelInputSpec:
    return make_spec()


@pytest.fixture
def events() -> list[Event]:
    """A 1-particle event, a 0-neutral event, a large event and a typical one."""
    rng = np.random.default_rng(7)
    return [
        make_event(rng, num_charged=1, num_neutral=0),
        make_event(rng, num_charged=4, num_neutral=0),
        make_event(rng, num_charged=12, num_neutral=28),
        make_event(rng, num_charged=2, num_neutral=3),
    ]


@pytest.fixture
def batch(events: list[Event]) -> Batch:
    return make_batch(events)
