"""The assembled response: branch contract, ordering, truth matching, determinism, input errors."""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pytest
from tests.simulation.detector.builders import isotropic_directions, make_chunk

from pmse_graph.errors import DataError
from pmse_graph.simulation.detector import COUNT_BRANCHES, MISSING, TRACK_BRANCHES, DetectorResponse

MASSES = {22: 0.0, 211: 0.13957, -211: 0.13957, 321: 0.493677, -321: 0.493677, 11: 0.000511, 13: 0.10566, 2112: 0.939565}


def mixed_events(num_events: int, seed: int = 4):
    """Events of pi+ pi- K+ K- and three photons, momenta 0.1-1.2 GeV/c in random directions."""
    rng = np.random.default_rng(seed)
    species = np.tile([211, -211, 321, -321, 22, 22, 22], num_events)
    momentum = rng.uniform(0.1, 1.2, size=species.shape[0])[:, None] * isotropic_directions(rng, species.shape[0])
    mass = np.array([MASSES[code] for code in species])
    return make_chunk(pdg=species, momentum=momentum, mass=mass, per_event=7)


def test_branches_and_types(simulate):
    output = simulate(mixed_events(300))
    assert set(output) == set(COUNT_BRANCHES) | set(TRACK_BRANCHES)
    for name in COUNT_BRANCHES:
        assert output[name].dtype == np.int32
        assert output[name].shape == (300,)
    for name in TRACK_BRANCHES:
        assert isinstance(output[name], ak.Array)
        assert np.array_equal(ak.num(output[name]).to_numpy(), output["nTracks"]), name
    assert (output["nTracks"] == output["nCharged"] + output["nNeutral"]).all()
    assert str(ak.type(output["q"])).endswith("int32")
    assert str(ak.type(output["emc_energy"])).endswith("float64")


def test_charged_first_and_counts(simulate):
    output = simulate(mixed_events(300))
    charge = output["q"]
    position = ak.local_index(charge)
    charged_rows = charge != 0
    assert ak.all(position[charged_rows] < output["nCharged"][:, None])
    assert ak.all(position[~charged_rows] >= output["nCharged"][:, None])
    assert (ak.sum(charged_rows, axis=1).to_numpy() == output["nCharged"]).all()
    assert (output["nGoodCharged"] <= output["nCharged"]).all()
    assert (output["nGoodNeutral"] <= output["nNeutral"]).all()


def test_truth_match_points_at_the_particle(simulate):
    chunk = mixed_events(200)
    output = simulate(chunk)
    mc_idx = output["mc_idx"]
    event = np.repeat(np.arange(200), output["nTracks"])
    flat_idx = ak.flatten(mc_idx).to_numpy()
    matched = flat_idx >= 0
    truth_pdg = chunk.pdg[chunk.offsets[event[matched]] + flat_idx[matched]]
    flat_q = ak.flatten(output["q"]).to_numpy()[matched]
    charged = flat_q != 0
    # the charge of the track follows the sign of the truth PDG code for pi and K
    assert (np.sign(truth_pdg[charged]) == flat_q[charged]).all()
    # neutral showers matched to photons or to charged particles the MDC missed
    assert np.isin(truth_pdg[~charged], [22, 211, -211, 321, -321]).all()


def test_missing_values_for_neutral_rows(simulate):
    output = simulate(mixed_events(200))
    neutral = output["q"] == 0
    for name in ("mdc_p3_px", "mdc_p3_py", "mdc_p3_pz", "vz0", "vr0", "EoP", "pid_prob_pi", "muc_dpt", "muc_numHits"):
        assert ak.all(output[name][neutral] == MISSING), name
    assert ak.all(output["emc_energy"][neutral] != MISSING)


def test_same_seed_same_output(response):
    chunk = mixed_events(200)
    first = response.simulate(chunk, np.random.default_rng(123))
    second = response.simulate(chunk, np.random.default_rng(123))
    other = response.simulate(chunk, np.random.default_rng(124))
    for name in COUNT_BRANCHES + TRACK_BRANCHES:
        assert np.array_equal(ak.flatten(first[name], axis=None).to_numpy(), ak.flatten(second[name], axis=None).to_numpy()), name
    assert not np.array_equal(ak.flatten(first["mdc_p3_px"]).to_numpy(), ak.flatten(other["mdc_p3_px"]).to_numpy())


def test_good_track_and_photon_fractions(simulate):
    output = simulate(mixed_events(2000))
    # every charged particle is primary, so almost every track is good
    assert output["nGoodCharged"].sum() / output["nCharged"].sum() > 0.99
    # acceptance, the polar-angle windows and the isolation from four tracks remove some of
    # the three photons per event, while split-offs add fake ones
    good_per_event = output["nGoodNeutral"].mean()
    assert 1.8 < good_per_event < 3.2
    assert output["nNeutral"].mean() > good_per_event


def test_invisible_and_intermediate_particles_are_ignored(simulate):
    chunk = make_chunk(pdg=np.array([12, 111]), momentum=np.array([[0.5, 0.0, 0.1], [0.0, 0.5, 0.1]]), mass=np.array([0.0, 0.135]), per_event=2)
    chunk.is_final[2] = False  # the pi0 decayed
    output = simulate(chunk)
    assert output["nTracks"].tolist() == [0]


def test_non_finite_momentum_is_rejected(response):
    chunk = mixed_events(5)
    chunk.p4[9, 0] = np.nan
    with pytest.raises(DataError, match="particle 1 of event 1"):
        response.simulate(chunk, np.random.default_rng(0))


def test_inconsistent_offsets_are_rejected(response):
    chunk = mixed_events(5)
    chunk.offsets = chunk.offsets[:-1]
    with pytest.raises(DataError, match="offsets"):
        response.simulate(chunk, np.random.default_rng(0))


def test_unknown_pdg_code_is_counted(caplog):
    # Sigma+ (3222) as a final-state particle is not in the response table: it is tracked as a charged hadron
    chunk = make_chunk(pdg=np.full(50, 3222), momentum=np.tile([0.8, 0.0, 0.1], (50, 1)), mass=np.full(50, 1.18937))
    response = DetectorResponse.from_config()
    with caplog.at_level(logging.WARNING):
        output = response.simulate(chunk, np.random.default_rng(0))
        response.simulate(chunk, np.random.default_rng(1))
    assert "50 final-state particles" in caplog.text
    # the warning is issued once per new code; the count keeps running
    assert caplog.text.count("outside the detector-response table") == 1
    assert response.unknown_particle_count == 100
    assert output["nCharged"].sum() > 40


def test_empty_chunk(response):
    chunk = make_chunk(pdg=np.zeros(0, dtype=np.int32), momentum=np.zeros((0, 3)), mass=np.zeros(0))
    output = response.simulate(chunk, np.random.default_rng(0))
    assert output["nTracks"].shape == (0,)
    assert len(output["q"]) == 0


def test_from_config_matches_default(default_response):
    assert DetectorResponse.from_config(None).config == default_response.config


def test_default_response_on_mixed_events(default_response):
    output = default_response.simulate(mixed_events(500), np.random.default_rng(3))
    assert set(output) == set(COUNT_BRANCHES) | set(TRACK_BRANCHES)
    assert (output["nTracks"] == output["nCharged"] + output["nNeutral"]).all()
    assert output["nGoodCharged"].sum() / output["nCharged"].sum() > 0.99
