"""Tests of the Lagrange-multiplier kinematic fit on generated rho pi events and on hand-made cases."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from scipy import stats

from pmse_graph.physics.pdg import PI0_MASS, PION_MASS
from pmse_graph.selection.candidates import EVENT_BRANCHES, TRACK_BRANCHES, build_candidates
from pmse_graph.selection.config import SelectionCuts
from pmse_graph.selection.fits import beam_four_momentum
from pmse_graph.selection.kinfit import MassConstraint, four_momenta, kinematic_fit, kinematic_fit_batched
from pmse_graph.simulation.detector.config import load_detector_config

PI_PI_GAMMA_GAMMA = np.array([PION_MASS, PION_MASS, 0.0, 0.0])
PI0_CONSTRAINT = (MassConstraint((2, 3), PI0_MASS),)
SIGNAL_TREE_IDS = 4
"""The sample's four most frequent trees are the three rho pi modes and non-resonant pi+ pi- pi0."""
KS_MAX_DISTANCE = 0.05
"""Largest allowed distance between the chi2 CDF of the fits and the chi2 law (KS statistic)."""


@pytest.fixture(scope="module")
def matched_signal(rho_pi_sample):
    """Measured pi+ pi- gamma gamma of signal events whose two good photons are the pi0's, with errors."""
    measured, sigma = [], []
    for path in rho_pi_sample.paths:
        arrays = uproot.open(path)["evt"].arrays(list(EVENT_BRANCHES + TRACK_BRANCHES) + ["mc_idx", "Pid", "Midx"])
        candidates = build_candidates(arrays, config=load_detector_config())

        # truth-match every good photon: a photon whose mother is a pi0
        counts = ak.to_numpy(ak.num(arrays["q"]))
        track_start = np.concatenate([[0], np.cumsum(counts)])
        truth_start = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(arrays["Pid"])))])
        pid = ak.to_numpy(ak.flatten(arrays["Pid"]))
        mother = ak.to_numpy(ak.flatten(arrays["Midx"]))
        mc_idx = ak.to_numpy(ak.flatten(arrays["mc_idx"]))
        photon_event = np.repeat(np.arange(len(arrays)), candidates.num_good_photons)
        matched = mc_idx[track_start[photon_event] + candidates.photon_slot]
        truth = truth_start[photon_event] + np.maximum(matched, 0)
        from_pi0 = (matched >= 0) & (pid[truth] == 22) & (pid[truth_start[photon_event] + mother[truth]] == 111)

        per_event = np.bincount(photon_event[from_pi0], minlength=len(arrays))
        chosen = (per_event == 2) & (candidates.num_good_tracks == 2) & (candidates.net_charge == 0)
        chosen &= candidates.tree_id < SIGNAL_TREE_IDS
        events = np.flatnonzero(chosen)
        rows = np.flatnonzero(from_pi0)[np.searchsorted(photon_event[from_pi0], events)]
        photons = np.stack([candidates.photons[rows], candidates.photons[rows + 1]], axis=1)
        photon_sigma = np.stack([candidates.photon_sigma[rows], candidates.photon_sigma[rows + 1]], axis=1)
        measured.append(np.concatenate([candidates.tracks[events], photons], axis=1))
        sigma.append(np.concatenate([candidates.track_sigma_pion[events], photon_sigma], axis=1))
    return np.concatenate(measured), np.concatenate(sigma)


@pytest.fixture(scope="module", params=["4C", "5C"])
def signal_fit(request, matched_signal):
    measured, sigma = matched_signal
    constraints = PI0_CONSTRAINT if request.param == "5C" else ()
    result = kinematic_fit(
        measured=measured, sigma=sigma, mass=PI_PI_GAMMA_GAMMA, total=beam_four_momentum(SelectionCuts()), mass_constraints=constraints
    )
    return request.param, measured, result


def test_sample_has_enough_matched_signal(matched_signal) -> None:
    measured, _ = matched_signal

    assert measured.shape[1:] == (4, 3)
    assert measured.shape[0] > 1000


def test_signal_fits_converge(signal_fit) -> None:
    name, _, result = signal_fit

    assert result.ndf == (5 if name == "5C" else 4)
    assert result.converged.mean() > 0.995
    assert np.isfinite(result.chi2[result.converged]).all()
    assert result.iterations[result.converged].max() < 20


def test_fit_meets_constraints(signal_fit) -> None:
    name, _, result = signal_fit
    good = result.converged
    total = result.p4[good].sum(axis=1)
    np.testing.assert_allclose(total, np.broadcast_to(beam_four_momentum(SelectionCuts()), total.shape), atol=1e-4)
    if name == "5C":
        pair = result.p4[good, 2] + result.p4[good, 3]
        mass = np.sqrt(pair[:, 3] ** 2 - (pair[:, :3] ** 2).sum(axis=1))
        np.testing.assert_allclose(mass, PI0_MASS, atol=1e-4)


def test_pulls_centred_with_unit_width(signal_fit) -> None:
    _, _, result = signal_fit
    pulls = result.pulls[result.converged].reshape(-1, 12)
    low, high = np.percentile(pulls, [15.87, 84.13], axis=0)

    assert np.abs(np.median(pulls, axis=0)).max() < 0.1
    assert np.abs(pulls.mean(axis=0)).max() < 0.1
    # the central 68% of a unit Gaussian spans 2
    assert ((high - low) / 2).min() > 0.9
    assert ((high - low) / 2).max() < 1.12


def test_chi2_follows_its_law(signal_fit) -> None:
    _, _, result = signal_fit
    chi2 = result.chi2[result.converged]
    distance = stats.kstest(chi2, "chi2", args=(result.ndf,)).statistic

    assert distance < KS_MAX_DISTANCE
    assert np.median(chi2) == pytest.approx(stats.chi2(result.ndf).median(), rel=0.1)


def test_fitted_pi0_mass_sharper_than_measured(matched_signal) -> None:
    measured, sigma = matched_signal
    result = kinematic_fit(measured=measured, sigma=sigma, mass=PI_PI_GAMMA_GAMMA, total=beam_four_momentum(SelectionCuts()))
    good = result.converged

    def pair_mass(p4: np.ndarray) -> np.ndarray:
        pair = p4[:, 2] + p4[:, 3]
        return np.sqrt(np.maximum(pair[:, 3] ** 2 - (pair[:, :3] ** 2).sum(axis=1), 0.0))

    measured_mass = pair_mass(four_momenta(measured[good], PI_PI_GAMMA_GAMMA))
    fitted_mass = pair_mass(result.p4[good])

    def width(mass: np.ndarray) -> float:
        low, high = np.percentile(mass, [15.87, 84.13])
        return (high - low) / 2

    assert abs(np.median(fitted_mass) - PI0_MASS) < 0.003
    assert width(fitted_mass) < 0.9 * width(measured_mass)


def test_unreachable_constraint_is_flagged() -> None:
    # one pi+ pi- gamma gamma hypothesis that can be met, and one asking M(gamma gamma) above the J/psi mass
    measured = np.array([[[1.2, 1.0, 0.2], [1.2, 2.1, 3.3], [0.4, 1.5, 1.0], [0.3, 1.6, 1.3]]] * 2)
    sigma = np.full_like(measured, 0.01)
    total = beam_four_momentum(SelectionCuts())
    reachable = kinematic_fit(measured=measured[:1], sigma=sigma[:1], mass=PI_PI_GAMMA_GAMMA, total=total)
    result = kinematic_fit(
        measured=measured, sigma=sigma, mass=PI_PI_GAMMA_GAMMA, total=total, mass_constraints=(MassConstraint((2, 3), 5.0),)
    )

    assert not result.converged.any()
    assert np.isinf(result.chi2).all()
    assert np.isnan(result.pulls).all()
    assert reachable.converged.all()


def test_failed_rows_leave_others_intact() -> None:
    rng = np.random.default_rng(3)
    total = np.array([0.0, 0.0, 0.0, 3.0969])
    # back-to-back photon pairs with a small smear converge; a lone zero-momentum-like row cannot
    good = np.array([[1.5, 1.0, 0.3], [1.5, np.pi - 1.0, 0.3 + np.pi]])[None] + 0.002 * rng.standard_normal((5, 2, 3))
    bad = np.array([[[0.01, 1.0, 0.3], [0.01, 1.0, 0.3]]])
    measured = np.concatenate([good, bad])
    result = kinematic_fit(measured=measured, sigma=np.full_like(measured, 0.01), mass=np.zeros(2), total=total)

    assert result.converged[:5].all()
    assert not result.converged[5]
    assert np.isinf(result.chi2[5])


def test_batched_matches_single_call(matched_signal) -> None:
    measured, sigma = matched_signal
    measured, sigma = measured[:300], sigma[:300]
    kwargs = dict(measured=measured, sigma=sigma, mass=PI_PI_GAMMA_GAMMA, total=beam_four_momentum(SelectionCuts()))
    whole = kinematic_fit(**kwargs)
    sliced = kinematic_fit_batched(batch_size=70, **kwargs)

    np.testing.assert_allclose(sliced.chi2, whole.chi2)
    np.testing.assert_array_equal(sliced.converged, whole.converged)


@pytest.mark.parametrize(
    ("measured_shape", "sigma_value", "message"),
    [((4, 3), 0.01, "shape"), ((2, 4, 2), 0.01, "shape"), ((2, 4, 3), 0.0, "sigma > 0")],
)
def test_invalid_input_raises(measured_shape, sigma_value, message) -> None:
    measured = np.ones(measured_shape)
    with pytest.raises(ValueError, match=message):
        kinematic_fit(measured=measured, sigma=np.full(measured_shape, sigma_value), mass=np.zeros(4), total=np.zeros(4))


def test_mass_constraint_out_of_range_raises() -> None:
    measured = np.ones((1, 2, 3))
    with pytest.raises(ValueError, match="out of range"):
        kinematic_fit(
            measured=measured, sigma=measured, mass=np.zeros(2), total=np.zeros(4), mass_constraints=(MassConstraint((1, 2), 0.1),)
        )
