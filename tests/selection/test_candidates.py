"""Tests of the good-track and good-photon candidates read from generated ntuples."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from pmse_graph.errors import DataError
from pmse_graph.selection.candidates import EVENT_BRANCHES, TRACK_BRANCHES, build_candidates, iterate_candidates, validate_inputs
from pmse_graph.simulation.detector.config import load_detector_config


@pytest.fixture(scope="module")
def first_file(rho_pi_sample):
    arrays = uproot.open(rho_pi_sample.paths[0])["evt"].arrays()
    return arrays, build_candidates(arrays, config=load_detector_config())


def test_good_track_counts_match_ntuple(first_file) -> None:
    arrays, candidates = first_file

    np.testing.assert_array_equal(candidates.num_good_tracks, ak.to_numpy(arrays["nGoodCharged"]))


def test_good_photon_counts_match_ntuple(first_file) -> None:
    arrays, candidates = first_file
    # the ntuple isolates photons from the true helix, the selection from the measured one
    agreement = (candidates.num_good_photons == ak.to_numpy(arrays["nGoodNeutral"])).mean()

    assert agreement > 0.99


def test_positive_track_comes_first(first_file) -> None:
    arrays, candidates = first_file
    two = candidates.track_slot[:, 0] >= 0
    charge = ak.to_numpy(ak.flatten(arrays["q"]))
    start = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(arrays["q"])))])[:-1]

    assert two.sum() > 1000
    assert (charge[start[two] + candidates.track_slot[two, 0]] == 1).all()
    assert (charge[start[two] + candidates.track_slot[two, 1]] == -1).all()
    assert np.isnan(candidates.tracks[~two]).all()


def test_photons_are_neutral_showers(first_file) -> None:
    arrays, candidates = first_file
    event = np.repeat(np.arange(len(arrays)), candidates.num_good_photons)
    start = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(arrays["q"])))])
    flat = start[event] + candidates.photon_slot

    assert (ak.to_numpy(ak.flatten(arrays["q"]))[flat] == 0).all()
    np.testing.assert_allclose(candidates.photons[:, 0], ak.to_numpy(ak.flatten(arrays["emc_energy"]))[flat])
    assert (candidates.photons[:, 0] > 0.025).all()


def test_errors_follow_detector_resolution(first_file) -> None:
    _, candidates = first_file
    config = load_detector_config()
    energy = candidates.photons[:, 0]
    barrel = np.abs(np.cos(candidates.photons[:, 1])) < config.emc.barrel_max_abs_cos_theta
    expected = np.hypot(config.emc.barrel.stochastic / np.sqrt(energy), config.emc.barrel.constant) * energy

    np.testing.assert_allclose(candidates.photon_sigma[barrel, 0], expected[barrel])
    assert (candidates.photon_sigma > 0).all()
    two = candidates.track_slot[:, 0] >= 0
    relative = candidates.track_sigma_pion[two, :, 0] / candidates.tracks[two, :, 0]
    # sigma_p / p of a pion is about 0.5% around 1 GeV/c
    assert 0.003 < np.median(relative) < 0.008


def test_chunks_cover_every_event(rho_pi_sample) -> None:
    paths = validate_inputs([str(path) for path in rho_pi_sample.paths])
    chunks = list(iterate_candidates(paths, config=load_detector_config(), step_size=900))

    assert sum(chunk.num_events for chunk in chunks) == 4000
    assert chunks[1].entry_start == 900


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        validate_inputs([str(tmp_path / "absent.root")])


def test_missing_branch_names_nearest(tmp_path: Path, rho_pi_sample) -> None:
    arrays = uproot.open(rho_pi_sample.paths[0])["evt"].arrays(list(EVENT_BRANCHES + TRACK_BRANCHES), entry_stop=5)
    path = tmp_path / "no_eop.root"
    tracks = ak.zip({name: arrays[name] for name in TRACK_BRANCHES if name != "EoP"})
    branches = {name: ak.to_numpy(arrays[name]) for name in EVENT_BRANCHES} | {"tracks": tracks}
    with uproot.recreate(path) as handle:
        handle.mktree(
            "evt",
            {name: value.type if isinstance(value, ak.Array) else value.dtype for name, value in branches.items()},
            counter_name=lambda counted: "nTracks",
            field_name=lambda outer, inner: inner,
        )
        handle["evt"].extend(branches)

    with pytest.raises(DataError, match=r"no_eop\.root: branch 'EoP' not found in tree 'evt'; nearest branches"):
        validate_inputs([str(path)])


def test_non_finite_value_names_entry(rho_pi_sample) -> None:
    arrays = uproot.open(rho_pi_sample.paths[0])["evt"].arrays(list(EVENT_BRANCHES + TRACK_BRANCHES), entry_stop=10)
    flat = ak.to_numpy(ak.flatten(arrays["vz0"])).copy()
    counts = ak.to_numpy(ak.num(arrays["vz0"]))
    flat[counts[:3].sum()] = np.nan
    arrays["vz0"] = ak.unflatten(flat, counts)

    with pytest.raises(DataError, match=r"f\.root: branch 'vz0' has a non-finite value at entry 103"):
        build_candidates(arrays, config=load_detector_config(), source="f.root", entry_start=100)
