"""PID from dE/dx and TOF: the ionisation curve, pi/K separation and the hypothesis priors."""

from __future__ import annotations

import awkward as ak
import numpy as np
import uproot
from tests.simulation.detector.builders import single_particles

from pmse_graph.simulation.detector import MISSING, load_detector_config
from pmse_graph.simulation.detector.pid import HYPOTHESIS_MASSES, HYPOTHESIS_NAMES, expected_dedx

PROBABILITY_BRANCHES = tuple(f"pid_prob_{name}" for name in HYPOTHESIS_NAMES)


def charged(output: dict, name: str) -> np.ndarray:
    return ak.flatten(output[name][output["q"] != 0]).to_numpy()


def test_dedx_curve_minimum_and_plateau():
    config = load_detector_config().pid.dedx
    beta_gamma = np.logspace(-0.5, 4.0, 2000)
    curve = expected_dedx(beta_gamma, config)
    assert abs(curve.min() - 1.0) < 1e-3
    assert 2.5 < beta_gamma[np.argmin(curve)] < 4.5
    assert np.isclose(curve[-1], config.plateau)
    # slow particles ionise more: a 1 GeV/c proton against a 1 GeV/c pion
    proton, pion = expected_dedx(1.0 / HYPOTHESIS_MASSES[[4, 2]], config)
    assert proton > 1.3 * pion


def test_probabilities_sum_to_one(simulate):
    output = simulate(single_particles(211, 0.13957, 0.7, 3000, cos_range=(-0.9, 0.9)))
    probabilities = np.stack([charged(output, name) for name in PROBABILITY_BRANCHES], axis=1)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert ((probabilities >= 0.0) & (probabilities <= 1.0)).all()
    assert (charged(output, "pid_prob_type") == np.argmax(probabilities, axis=1)).all()


def test_pion_kaon_identification_at_low_momentum(simulate):
    for pdg, mass, expected_type in ((211, 0.13957, 2), (-321, 0.493677, 3)):
        for momentum in (0.3, 0.6):
            output = simulate(single_particles(pdg, mass, momentum, 4000, cos_range=(-0.9, 0.9)))
            identified = charged(output, "pid_prob_type")
            assert np.mean(identified == expected_type) > 0.95, (pdg, momentum)
            pion = charged(output, "pid_prob_pi")
            kaon = charged(output, "pid_prob_K")
            right = pion > kaon if expected_type == 2 else kaon > pion
            assert np.mean(right) > 0.98, (pdg, momentum)


def test_pion_kaon_overlap_at_high_momentum(simulate):
    # above about 1.2 GeV/c dE/dx bands merge and TOF differences shrink to a few sigma
    output = simulate(single_particles(321, 0.493677, 1.8, 4000, cos_range=(-0.9, 0.9)))
    assert np.mean(charged(output, "pid_prob_type") == 3) < 0.95


def test_neutral_rows_have_no_pid(simulate):
    output = simulate(single_particles(22, 0.0, 0.5, 500))
    for name in PROBABILITY_BRANCHES + ("pid_prob_type",):
        assert (ak.flatten(output[name]).to_numpy() == MISSING).all()


def test_priors_match_real_truth_composition(shared_data):
    # the prior of each hypothesis is its share of charged final-state particles in real J/psi MC
    codes = {"e": 11, "mu": 13, "pi": 211, "K": 321, "p": 2212}
    counts = dict.fromkeys(codes, 0)
    for name in ("jpsi1.root", "jpsi2.root"):
        with uproot.open(shared_data / "topoana" / name) as file:
            arrays = file["evt"].arrays(["Pid", "Midx"])
        pdg = ak.flatten(arrays["Pid"]).to_numpy()
        sizes = ak.num(arrays["Pid"]).to_numpy()
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        mother = ak.flatten(arrays["Midx"]).to_numpy()
        has_daughters = np.zeros(pdg.shape[0], dtype=bool)
        has_daughters[(mother + starts)[mother >= 0]] = True
        final = np.abs(pdg[~has_daughters])
        for key, code in codes.items():
            counts[key] += int(np.sum(final == code))
    total = sum(counts.values())
    prior = load_detector_config().pid.prior
    for key in codes:
        assert abs(getattr(prior, key) - counts[key] / total) < 0.002, key
