"""Tests of atomic, weights-only checkpoints and the random-state round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pmse_graph.errors import PmseError
from pmse_graph.pretraining.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = save_checkpoint(tmp_path / "state.pt", {"rng": capture_rng_state(), "step": 7})
    expected = (random.random(), np.random.rand(), torch.rand(2))

    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    payload = load_checkpoint(path)
    restore_rng_state(payload["rng"])
    assert payload["step"] == 7
    assert random.random() == expected[0]
    assert np.random.rand() == expected[1]
    assert torch.equal(torch.rand(2), expected[2])


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    save_checkpoint(tmp_path / "a.pt", {"weights": torch.ones(3)})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "a.pt", {"weights": Unpicklable()})
    assert torch.equal(load_checkpoint(tmp_path / "a.pt")["weights"], torch.ones(3))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.pt"]


def test_load_rejects_missing_foreign_and_unsafe_files(tmp_path):
    with pytest.raises(PmseError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(PmseError, match="format"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": 1, "object": random.Random()}, tmp_path / "unsafe.pt")
    with pytest.raises(PmseError, match="Failed to read"):
        load_checkpoint(tmp_path / "unsafe.pt")
