"""MDC tracking: momentum resolution, acceptance, curling threshold and vertex parameters."""

from __future__ import annotations

import awkward as ak
import numpy as np
from tests.simulation.detector.builders import make_chunk, single_particles

from pmse_graph.simulation.detector import load_detector_config
from pmse_graph.simulation.detector.mdc import momentum_resolution

PION_MASS = 0.13957


def reconstructed_momentum(output: dict) -> np.ndarray:
    charged = output["q"] != 0
    components = [ak.flatten(output[name][charged]).to_numpy() for name in ("mdc_p3_px", "mdc_p3_py", "mdc_p3_pz")]
    return np.linalg.norm(np.stack(components, axis=1), axis=1)


def test_momentum_resolution_at_one_gev(simulate):
    output = simulate(single_particles(211, PION_MASS, 1.0, 20000, cos_range=(-0.8, 0.8)))
    relative = reconstructed_momentum(output) - 1.0
    # sigma_p / p = 0.5% at 1 GeV/c; 20,000 tracks measure it to about 0.5% of itself
    assert 0.0047 < np.std(relative) < 0.0053
    assert abs(np.mean(relative)) < 2e-4


def test_momentum_resolution_formula_matches_config():
    config = load_detector_config().mdc
    sigma = momentum_resolution(momentum=np.array([1.0, 0.1]), mass=np.array([PION_MASS, PION_MASS]), config=config)
    assert abs(sigma[0] - 0.005) < 0.0002
    # multiple scattering grows as 1 / beta for slow pions
    assert sigma[1] > sigma[0]


def test_polar_acceptance_edge(simulate):
    inside = simulate(single_particles(211, PION_MASS, 1.0, 4000, cos_range=(0.88, 0.925)))
    outside = simulate(single_particles(211, PION_MASS, 1.0, 4000, cos_range=(0.935, 0.99)))
    assert inside["nCharged"].mean() > 0.97
    assert outside["nCharged"].sum() == 0


def test_low_pt_tracks_curl_up(simulate):
    slow = simulate(single_particles(211, PION_MASS, 0.04, 4000, cos_range=(-0.5, 0.5)))
    fast = simulate(single_particles(211, PION_MASS, 0.08, 4000, cos_range=(-0.5, 0.5)))
    assert slow["nCharged"].sum() == 0
    assert fast["nCharged"].mean() > 0.95


def test_primary_tracks_are_good(simulate):
    output = simulate(single_particles(211, PION_MASS, 0.6, 5000, cos_range=(-0.9, 0.9)))
    charged = output["q"] != 0
    vr0 = ak.flatten(output["vr0"][charged]).to_numpy()
    vz0 = ak.flatten(output["vz0"][charged]).to_numpy()
    # beam spot (0.38 mm in x, 15 mm in z) plus resolution
    assert np.percentile(vr0, 99) < 0.3
    assert 1.2 < np.std(vz0) < 1.8
    assert output["nGoodCharged"].sum() / output["nCharged"].sum() > 0.99


def test_displaced_tracks_keep_their_distance(simulate):
    # a daughter born 3 cm from the axis, flying tangentially: Vr = 3 cm fails the Vr < 1 cm cut
    num = 3000
    vertex = np.tile([3.0, 0.0, 0.0], (num, 1))
    momentum = np.tile([0.0, 0.8, 0.2], (num, 1))
    chunk = make_chunk(pdg=np.full(num, 211), momentum=momentum, mass=np.full(num, PION_MASS), vertex=vertex)
    output = simulate(chunk)
    vr0 = ak.flatten(output["vr0"][output["q"] != 0]).to_numpy()
    assert abs(np.median(vr0) - 3.0) < 0.05
    assert output["nGoodCharged"].sum() == 0
