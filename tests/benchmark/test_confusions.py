"""Tests of the automatic choice of confusion pairs and their shares."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from pmse_graph.benchmark.confusions import ONE_PI0, SHARED_FINAL_STATE, confusion_pairs, confusion_shares, final_state_particles
from pmse_graph.errors import DataError

TABLE = pd.DataFrame({
    "id": [0, 1, 2, 3, 4, 5],
    "tree": [
        "J/psi --> pi0 pi+ pi-",
        "J/psi --> pi+ rho-; rho- --> pi0 pi-",
        "J/psi --> pi+ pi-",
        "J/psi --> pi0 pi0 pi+ pi-",
        "J/psi --> mu+ mu-",
        "J/psi --> pi0 rho0; rho0 --> pi+ pi-",
    ],
    "final_state": [
        "J/psi ---> pi0 pi+ pi-",
        "J/psi ---> pi0 pi+ pi-",
        "J/psi ---> pi+ pi-",
        "J/psi ---> pi0 pi0 pi+ pi-",
        "J/psi ---> mu+ mu-",
        "J/psi ---> pi0 pi+ pi-",
    ],
    "count": [500, 300, 200, 100, 900, 50],
})


def test_final_state_particles_counts():
    assert final_state_particles("J/psi ---> pi0 pi0 pi+ pi-") == Counter({"pi0": 2, "pi+": 1, "pi-": 1})


def test_final_state_without_arrow_raises():
    with pytest.raises(DataError, match="Invalid final state"):
        final_state_particles("pi0 pi+ pi-")


def test_pairs_shared_final_state_ranked_by_smaller_class():
    pairs = confusion_pairs(TABLE, np.array([0, 1, 2, 3, 4, 5]), max_pairs=2)
    shared = pairs[pairs["kind"] == SHARED_FINAL_STATE]
    # three classes share pi0 pi+ pi-: pairs (0,1) min 300, (0,5) min 50, (1,5) min 50; two are kept
    assert set(map(tuple, shared[["class_a", "class_b"]].to_numpy())) == {(0, 1), (1, 0), (0, 5), (5, 0)}
    assert shared.iloc[0]["min_count"] == 300
    assert shared.iloc[0]["tree_a"] == "J/psi --> pi0 pi+ pi-"


def test_pairs_one_pi0_both_directions():
    pairs = confusion_pairs(TABLE, np.array([0, 2, 3, 4]), max_pairs=5)
    one_pi0 = pairs[pairs["kind"] == ONE_PI0]
    ordered = set(map(tuple, one_pi0[["class_a", "class_b"]].to_numpy()))
    assert ordered == {(0, 2), (2, 0), (3, 0), (0, 3)}
    assert (pairs["class_a"] != 4).all()  # mu+ mu- pairs with nothing


def test_pairs_unknown_class_raises():
    with pytest.raises(DataError, match="not in the topology table"):
        confusion_pairs(TABLE, np.array([0, 17]), max_pairs=1)


def test_shares_count_predictions_of_class_a():
    pairs = confusion_pairs(TABLE, np.array([0, 1]), max_pairs=1)
    truth = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([1, 0, 0, 1, 1, 0])
    shares = confusion_shares(pairs, truth, predicted).set_index(["class_a", "class_b"])
    assert shares.loc[(0, 1), "share"] == pytest.approx(0.5)
    assert shares.loc[(1, 0), "share"] == pytest.approx(0.5)
    assert shares.loc[(0, 1), "events_a"] == 4


def test_shares_nan_without_events_of_class_a():
    pairs = confusion_pairs(TABLE, np.array([0, 1]), max_pairs=1)
    shares = confusion_shares(pairs, np.array([0, 0]), np.array([0, 1])).set_index(["class_a", "class_b"])
    assert np.isnan(shares.loc[(1, 0), "share"])
