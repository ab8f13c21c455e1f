"""Tests of the eps-clamped pair kinematics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pmse_graph.physics.kinematics import (
    EPS, energy, invariant_mass, invariant_mass_squared, log_kt, log_momentum_fraction, opening_angle_cos_sin,
    pair_features,
)
from pmse_graph.physics.pdg import PION_MASS


def test_back_to_back_pions_mass():
    p3_i, p3_j = np.array([[0.0, 0.0, 1.0]]), np.array([[0.0, 0.0, -1.0]])
    mass = np.array([PION_MASS])
    features = pair_features(p3_i, p3_j, mass, mass)
    expected_m2 = 4 * (1.0 + PION_MASS**2)
    assert features[0, 0] == pytest.approx(math.log(expected_m2))
    assert features[0, 1] == pytest.approx(-1.0)
    assert features[0, 2] == pytest.approx(0.0, abs=1e-7)
    assert features[0, 4] == pytest.approx(math.log(0.5))


def test_perpendicular_pair_kt_and_z():
    p3_i, p3_j = np.array([[2.0, 0.0, 0.0]]), np.array([[0.0, 0.5, 0.0]])
    cos, sin = opening_angle_cos_sin(p3_i, p3_j)
    assert cos[0] == pytest.approx(0.0)
    assert sin[0] == pytest.approx(1.0)
    assert log_kt(p3_i, p3_j)[0] == pytest.approx(math.log(0.5))
    assert log_momentum_fraction(p3_i, p3_j)[0] == pytest.approx(math.log(0.5 / 2.5))


def test_invariant_mass_of_four_vectors():
    p4 = np.array([[0.3, 0.4, 0.0, 1.0], [1.0, 0.0, 0.0, 0.9]])
    assert invariant_mass_squared(p4)[0] == pytest.approx(1.0 - 0.25)
    assert invariant_mass(p4)[1] == 0.0
    assert energy(np.array([0.0, 0.0, 0.75]), 1.0) == pytest.approx(1.25)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_collinear_and_zero_momenta_are_finite(dtype):
    p3_i = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e-9, 0.0, 0.0]], dtype=dtype)
    p3_j = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0]], dtype=dtype)
    zero_mass = np.zeros(4, dtype=dtype)
    features = pair_features(p3_i, p3_j, zero_mass, zero_mass)
    assert np.isfinite(features).all()
    assert features[0, 0] == pytest.approx(math.log(EPS))
    assert features[0, 2] == 0.0
    assert features[1, 1] == 1.0
    assert features[2, 3] == pytest.approx(math.log(EPS))
    assert features[2, 4] == pytest.approx(math.log(EPS))


def test_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    p3_i, p3_j = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    mass_i, mass_j = np.full(50, PION_MASS), np.zeros(50)
    expected = pair_features(p3_i, p3_j, mass_i, mass_j)
    result = pair_features(*(torch.from_numpy(a) for a in (p3_i, p3_j, mass_i, mass_j)))
    assert isinstance(result, torch.Tensor)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12)


def test_pair_features_symmetric():
    rng = np.random.default_rng(1)
    p3_i, p3_j = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    mass = np.full(20, PION_MASS)
    np.testing.assert_allclose(pair_features(p3_i, p3_j, mass, mass), pair_features(p3_j, p3_i, mass, mass), rtol=1e-12)


def test_pair_features_with_given_norms():
    rng = np.random.default_rng(4)
    p3 = rng.normal(0.0, 0.5, (200, 3)).astype(np.float32)
    p3[:3] = 0.0
    mass = np.where(rng.random(200) < 0.5, 0.13957039, 0.0).astype(np.float32)
    source, target = rng.integers(0, 200, 1000), rng.integers(0, 200, 1000)
    norm = np.sqrt(np.einsum("ij,ij->i", p3, p3))
    direct = pair_features(p3[source], p3[target], mass[source], mass[target])
    gathered = pair_features(p3[source], p3[target], mass[source], mass[target], norm_i=norm[source], norm_j=norm[target])
    # the graph builder relies on this: per-particle norms give the same bits as per-pair ones
    assert np.array_equal(direct, gathered)
