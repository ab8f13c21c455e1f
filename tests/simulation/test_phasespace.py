"""Tests of the n-body phase-space generator: conservation, flat Dalitz plots, analytic densities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from pmse_graph.errors import DataError
from pmse_graph.simulation.phasespace import (
    PhaseSpaceSampler,
    boost_to_lab,
    generate_weighted,
    max_weight_bound,
    two_body_momentum,
)

JPSI = 3.0969
PI = 0.13957039
PI0 = 0.1349768
KAON = 0.493677
PROTON = 0.93827209


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1), 0.0))


@pytest.mark.parametrize("masses", [[PI, PI], [PI, PI, PI0], [KAON, KAON, PI, PI0], [PROTON, PROTON, PI, PI, PI0, PI0]])
def test_weighted_decays_conserve_four_momentum(masses: list[float]) -> None:
    rng = np.random.default_rng(1)
    num = 2000
    parent = np.full(num, JPSI)
    daughters = np.tile(masses, (num, 1))
    p4, weight = generate_weighted(parent_mass=parent, daughter_masses=daughters, rng=rng)

    assert p4.shape == (num, len(masses), 4)
    assert np.all(weight > 0)
    np.testing.assert_allclose(p4.sum(axis=1), np.tile([0.0, 0.0, 0.0, JPSI], (num, 1)), atol=1e-9)
    np.testing.assert_allclose(invariant_mass(p4), daughters, atol=1e-7)
    assert np.all(weight <= max_weight_bound(parent, daughters) * (1 + 1e-12))


def test_boost_to_lab_gives_parent_momentum() -> None:
    rng = np.random.default_rng(2)
    num = 500
    parent_p4 = np.zeros((num, 4))
    parent_p4[:, :3] = rng.normal(size=(num, 3))
    parent_p4[:, 3] = np.sqrt((parent_p4[:, :3] ** 2).sum(1) + JPSI**2)
    rest, _ = generate_weighted(parent_mass=np.full(num, JPSI), daughter_masses=np.tile([PI, PI, PI0], (num, 1)), rng=rng)

    lab = boost_to_lab(rest, parent_p4)

    np.testing.assert_allclose(lab.sum(axis=1), parent_p4, atol=1e-9)
    np.testing.assert_allclose(invariant_mass(lab), invariant_mass(rest), atol=1e-7)


def test_three_body_dalitz_plot_is_flat() -> None:
    rng = np.random.default_rng(3)
    num = 60_000
    sampler = PhaseSpaceSampler()
    masses = np.array([PI, PI, PI0])
    p4 = sampler.generate(parent_mass=np.full(num, JPSI), daughter_masses=np.tile(masses, (num, 1)), rng=rng)
    s12 = invariant_mass(p4[:, 0] + p4[:, 1]) ** 2
    s23 = invariant_mass(p4[:, 1] + p4[:, 2]) ** 2

    # keep the bins whose four corners all lie inside the Dalitz boundary
    edges_12 = np.linspace((masses[0] + masses[1]) ** 2, (JPSI - masses[2]) ** 2, 13)
    edges_23 = np.linspace((masses[1] + masses[2]) ** 2, (JPSI - masses[0]) ** 2, 13)
    counts, _, _ = np.histogram2d(s12, s23, bins=[edges_12, edges_23])
    inside = np.ones_like(counts, dtype=bool)
    for di in (0, 1):
        for dj in (0, 1):
            corner_12 = edges_12[di : di + 12, None]
            corner_23 = edges_23[None, dj : dj + 12]
            inside &= _inside_dalitz(corner_12, corner_23, JPSI, masses)
    observed = counts[inside]
    expected = observed.mean()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    dof = observed.size - 1

    assert observed.size > 40
    assert stats.chi2.sf(chi2, dof) > 1e-3


def _inside_dalitz(s12: np.ndarray, s23: np.ndarray, parent: float, masses: np.ndarray) -> np.ndarray:
    m1, m2, m3 = masses
    m12 = np.sqrt(s12)
    e2 = (s12 - m1**2 + m2**2) / (2 * m12)
    e3 = (parent**2 - s12 - m3**2) / (2 * m12)
    p2 = np.sqrt(np.maximum(e2**2 - m2**2, 0))
    p3 = np.sqrt(np.maximum(e3**2 - m3**2, 0))
    low = (e2 + e3) ** 2 - (p2 + p3) ** 2
    high = (e2 + e3) ** 2 - (p2 - p3) ** 2
    return (s23 >= low) & (s23 <= high)


def test_three_body_mass_follows_phase_space_density() -> None:
    rng = np.random.default_rng(4)
    num = 20_000
    masses = np.array([KAON, KAON, PI0])
    p4 = PhaseSpaceSampler().generate(parent_mass=np.full(num, JPSI), daughter_masses=np.tile(masses, (num, 1)), rng=rng)
    m12 = invariant_mass(p4[:, 0] + p4[:, 1])

    # dN/dm12 ~ p*(M; m12, m3) q*(m12; m1, m2)
    low, high = masses[0] + masses[1], JPSI - masses[2]
    grid = np.linspace(low, high, 4001)
    density = two_body_momentum(np.full_like(grid, JPSI), grid, np.full_like(grid, masses[2])) * two_body_momentum(
        grid, np.full_like(grid, masses[0]), np.full_like(grid, masses[1])
    )
    cdf_values = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    cdf_values /= cdf_values[-1]

    result = stats.kstest(m12, lambda x: np.interp(x, grid, cdf_values))
    assert result.pvalue > 1e-3


def test_tuned_bound_matches_analytic_bound() -> None:
    num = 20_000
    masses = np.tile([PI, PI, PI, PI, PI0], (num, 1))
    parent = np.full(num, JPSI)
    tuned = PhaseSpaceSampler(min_tuned_daughters=4)
    analytic = PhaseSpaceSampler()
    tuned_p4 = tuned.generate(parent_mass=parent, daughter_masses=masses, rng=np.random.default_rng(5))
    analytic_p4 = analytic.generate(parent_mass=parent, daughter_masses=masses, rng=np.random.default_rng(6), factor=1.0)

    tuned_mass = invariant_mass(tuned_p4[:, 0] + tuned_p4[:, 1] + tuned_p4[:, 4])
    analytic_mass = invariant_mass(analytic_p4[:, 0] + analytic_p4[:, 1] + analytic_p4[:, 4])

    assert tuned.efficiency > 10 * analytic.efficiency
    assert tuned.num_bound_violations == 0
    assert stats.ks_2samp(tuned_mass, analytic_mass).pvalue > 1e-3


@pytest.mark.parametrize("num_daughters, low, high", [(3, 0.2, 0.35), (7, 0.0, 1e-3)])
def test_analytic_bound_efficiency(num_daughters: int, low: float, high: float) -> None:
    num = 20_000
    parent = np.full(num, JPSI)
    daughters = np.full((num, num_daughters), PI)
    _, weight = generate_weighted(parent_mass=parent, daughter_masses=daughters, rng=np.random.default_rng(9))

    efficiency = float(np.mean(weight / max_weight_bound(parent, daughters)))

    assert low < efficiency < high


def test_low_bound_is_raised_and_counted() -> None:
    num = 2000
    sampler = PhaseSpaceSampler()
    p4 = sampler.generate(
        parent_mass=np.full(num, JPSI),
        daughter_masses=np.tile([PI, PI, PI0], (num, 1)),
        rng=np.random.default_rng(7),
        factor=1e-3,
    )

    assert sampler.num_bound_violations > 0
    np.testing.assert_allclose(p4.sum(axis=1)[:, 3], JPSI, atol=1e-9)


def test_decay_below_threshold_raises() -> None:
    with pytest.raises(DataError, match="below threshold"):
        generate_weighted(
            parent_mass=np.array([0.5]),
            daughter_masses=np.array([[KAON, KAON]]),
            rng=np.random.default_rng(8),
        )
