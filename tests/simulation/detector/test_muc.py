"""MUC response: muons penetrate by momentum and angle, hadrons rarely punch through."""

from __future__ import annotations

import awkward as ak
import numpy as np
from tests.simulation.detector.builders import single_particles

from pmse_graph.simulation.detector import MISSING

MUON_MASS = 0.10566
PION_MASS = 0.13957
MUC_BRANCHES = ("muc_dpt", "muc_numLayer", "muc_maxHitsInlater", "muc_numHits", "muc_dof", "muc_chisq")


def charged(output: dict, name: str) -> np.ndarray:
    return ak.flatten(output[name][output["q"] != 0]).to_numpy()


def test_muon_versus_pion(simulate):
    muons = simulate(single_particles(13, MUON_MASS, 1.0, 5000, cos_range=(-0.75, 0.75)))
    pions = simulate(single_particles(211, PION_MASS, 1.0, 5000, cos_range=(-0.75, 0.75)))
    muon_layers = charged(muons, "muc_numLayer")
    pion_layers = charged(pions, "muc_numLayer")
    muon_hit = muon_layers != int(MISSING)
    pion_hit = pion_layers != int(MISSING)
    assert muon_hit.mean() > 0.95
    assert pion_hit.mean() < 0.06
    assert np.median(muon_layers[muon_hit]) >= 5
    assert np.median(pion_layers[pion_hit]) <= 2


def test_slow_muons_stop_before_the_muc(simulate):
    output = simulate(single_particles(13, MUON_MASS, 0.35, 3000, cos_range=(-0.75, 0.75)))
    assert (charged(output, "muc_numLayer") == int(MISSING)).all()


def test_depth_grows_with_momentum(simulate):
    depths = []
    for momentum in (0.6, 0.8, 1.5):
        output = simulate(single_particles(13, MUON_MASS, momentum, 3000, cos_range=(-0.5, 0.5)))
        depth = charged(output, "muc_dpt")
        depths.append(np.median(depth[depth != MISSING]))
    assert depths[0] < depths[1] < depths[2]


def test_muc_coverage_edge(simulate):
    output = simulate(single_particles(13, MUON_MASS, 1.0, 3000, cos_range=(0.85, 0.92)))
    assert (charged(output, "muc_numLayer") == int(MISSING)).all()


def test_fit_variables_are_consistent(simulate):
    output = simulate(single_particles(13, MUON_MASS, 1.2, 3000, cos_range=(-0.8, 0.8)))
    layers = charged(output, "muc_numLayer")
    hit = layers != int(MISSING)
    hits = charged(output, "muc_numHits")[hit]
    max_in_layer = charged(output, "muc_maxHitsInlater")[hit]
    dof = charged(output, "muc_dof")[hit]
    chisq = charged(output, "muc_chisq")[hit]
    assert (hits >= layers[hit]).all()
    assert (max_in_layer <= hits).all()
    assert (dof == np.maximum(hits - 4, 0)).all()
    assert (chisq >= 0.0).all()
    # chi2 / dof of a good fit averages 1
    assert 0.8 < chisq[dof > 0].sum() / dof[dof > 0].sum() < 1.2


def test_no_muc_information_is_missing_everywhere(simulate):
    output = simulate(single_particles(11, 0.000511, 1.0, 2000, cos_range=(-0.8, 0.8)))
    for name in MUC_BRANCHES:
        assert (ak.flatten(output[name]).to_numpy() == MISSING).all(), name
