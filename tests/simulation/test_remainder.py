"""Tests for the hadronisation-remainder model: conservation, mass budget, tuning against real truth."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import uproot

from pmse_graph.errors import ConfigError
from pmse_graph.simulation.decay_model import DecayModel
from pmse_graph.simulation.remainder import RemainderConfig, RemainderModel, quantum_numbers

JPSI_MASS = 3.0969
CHARGED = [11, 13, 211, 321, 2212]


@pytest.fixture(scope="module")
def tuned() -> RemainderModel:
    return RemainderModel.from_yaml()


def totals(row: np.ndarray) -> tuple[int, int, int]:
    numbers = [quantum_numbers(int(code)) for code in row if code != 0]
    return tuple(int(sum(n[k] for n in numbers)) for k in range(3))


def test_sets_conserve_quantum_numbers(tuned):
    sets = tuned.sample(3_000, np.random.default_rng(0), budget=JPSI_MASS)
    for row in np.unique(sets, axis=0):
        assert totals(row) == (0, 0, 0), row


def test_sets_respect_mass_budget(tuned):
    budget = 1.5
    sets = tuned.sample(3_000, np.random.default_rng(1), budget=budget)
    masses = {int(c): m for c, m in zip(tuned.codes, tuned._mass)}
    for row in np.unique(sets, axis=0):
        assert sum(masses[int(c)] for c in row if c != 0) <= budget - tuned.config.min_kinetic_energy


def test_rows_sorted_with_padding_last(tuned):
    sets = tuned.sample(1_000, np.random.default_rng(2), budget=JPSI_MASS)
    sizes = (sets != 0).sum(axis=1)
    assert sizes.min() >= 2
    for row, size in zip(sets[:200], sizes[:200]):
        assert np.all(row[size:] == 0)
        assert np.all(np.diff(row[:size]) >= 0)


def test_excluded_sets_never_drawn():
    config = RemainderConfig(multiplicity={2: 1.0, 3: 1.0}, species={211: 1.0, 111: 1.0})
    model = RemainderModel(config)
    sets = model.sample(5_000, np.random.default_rng(3), budget=JPSI_MASS, exclude={(-211, 211), (-211, 111, 211)})
    drawn = {tuple(int(c) for c in row if c != 0) for row in sets}
    assert drawn == {(111, 111), (111, 111, 111)}


def test_matches_plain_rejection():
    # drawing the last hadron inside its quantum-number class must give the same distribution
    # as drawing all hadrons freely and rejecting non-conserving sets
    config = RemainderConfig(multiplicity={3: 1.0}, species={211: 2.0, 111: 1.0, 321: 1.0, 311: 0.5})
    model = RemainderModel(config)
    rng = np.random.default_rng(4)
    fast = collections.Counter(tuple(row) for row in model.sample(40_000, rng, budget=JPSI_MASS).tolist())

    picks = rng.choice(model.codes.shape[0], size=(400_000, 3), p=model.weights)
    numbers = np.array([quantum_numbers(int(c)) for c in model.codes])
    keep = np.all(numbers[picks].sum(axis=1) == 0, axis=1)
    brute = collections.Counter(tuple(sorted(row)) for row in model.codes[picks[keep]].tolist())
    total_fast, total_brute = sum(fast.values()), sum(brute.values())
    assert set(fast) == set(brute)
    for key in brute:
        p_fast, p_brute = fast[key] / total_fast, brute[key] / total_brute
        sigma = np.sqrt(p_brute * (1 - p_brute) / total_fast + p_brute * (1 - p_brute) / total_brute)
        assert abs(p_fast - p_brute) < 5 * sigma + 1e-4, key


def test_invalid_config_raises():
    with pytest.raises(ConfigError, match="at least 2"):
        RemainderModel(RemainderConfig(multiplicity={1: 1.0}, species={211: 1.0}))
    with pytest.raises(ConfigError, match="non-negative weight"):
        RemainderModel(RemainderConfig(multiplicity={2: 1.0}, species={211: -1.0}))
    with pytest.raises(ConfigError, match="unknown key"):
        from pmse_graph.config import parse_config

        parse_config(RemainderConfig, {"multiplicity": {2: 1.0}, "species": {211: 1.0}, "colour": 3})


def test_impossible_budget_raises():
    model = RemainderModel(RemainderConfig(multiplicity={2: 1.0}, species={2212: 1.0}, max_rounds=3))
    with pytest.raises(ConfigError, match="mass budget"):
        model.sample(100, np.random.default_rng(0), budget=1.0)


def charged_fractions(pdg_events, mother_events) -> np.ndarray:
    counts = []
    for pdg, mother in zip(pdg_events, mother_events):
        has_daughters = np.zeros(len(pdg), dtype=bool)
        has_daughters[mother[mother >= 0]] = True
        counts.append(int(np.isin(np.abs(pdg[~has_daughters]), CHARGED).sum()))
    return np.bincount(counts, minlength=12)[:12] / len(counts)


def test_charged_multiplicity_close_to_real(shared_data):
    arrays = uproot.open(shared_data / "topoana" / "jpsi1.root")["evt"].arrays(["Pid", "Midx"], entry_stop=20_000, library="np")
    real = charged_fractions(arrays["Pid"], arrays["Midx"])

    model = DecayModel.from_dec_file()
    ids, catalogue = model.sample(20_000, np.random.default_rng(8))
    generated = charged_fractions([catalogue[i].pdg for i in ids], [catalogue[i].mother for i in ids])
    for multiplicity in (0, 2, 4, 6, 8):
        assert abs(generated[multiplicity] - real[multiplicity]) < 0.04, (multiplicity, generated[:9], real[:9])
    # odd charged counts come only from particles left undecayed
    assert generated[1::2].sum() < 0.01
