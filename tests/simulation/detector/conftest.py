"""Fixtures of the detector-response tests: the response under test and a simulate shortcut."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pmse_graph.config import apply_overrides
from pmse_graph.simulation.detector import DetectorResponse, load_detector_config
from pmse_graph.simulation.truth import TruthChunk

@pytest.fixture(scope="session")
def response() -> DetectorResponse:
    """The default BESIII response without noise clusters, so single-particle events stay clean."""
    return DetectorResponse(apply_overrides(load_detector_config(), {"emc.noise.mean_count": 0.0}))


@pytest.fixture(scope="session")
def default_response() -> DetectorResponse:
    """The response exactly as the default configuration file sets it, noise clusters included."""
    return DetectorResponse.from_config()


@pytest.fixture()
def simulate(response: DetectorResponse) -> Callable[..., dict]:
    """Run the default response on a chunk with a fixed seed."""

    def run(chunk: TruthChunk, seed: int = 7) -> dict:
        return response.simulate(chunk, np.random.default_rng(seed))

    return run
