"""Good-track and good-photon selections, including the isolation from charged tracks."""

from __future__ import annotations

import numpy as np
from tests.simulation.detector.builders import make_chunk

from pmse_graph.simulation.detector import load_detector_config
from pmse_graph.simulation.detector.selection import good_charged_mask, good_photon_mask


def test_good_charged_cuts():
    config = load_detector_config().selection.good_charged
    momentum = np.array([[0.5, 0.0, 0.1], [0.5, 0.0, 0.1], [0.5, 0.0, 0.1], [0.05, 0.0, 0.5]])
    vz0 = np.array([0.5, 10.5, 0.0, 0.0])
    vr0 = np.array([0.1, 0.1, 1.2, 0.1])
    assert good_charged_mask(momentum=momentum, vz0=vz0, vr0=vr0, config=config).tolist() == [True, False, False, False]


def test_good_photon_windows():
    config = load_detector_config().selection.good_photon

    def at(cos: float, energy: float, time: float = 7.0) -> tuple[np.ndarray, float, float]:
        return np.array([np.sqrt(1.0 - cos**2), 0.0, cos]) * 100.0, energy, time

    cases = [
        (at(0.5, 0.030), True),
        (at(0.5, 0.020), False),
        (at(0.83, 0.2), False),  # between barrel and endcap windows
        (at(0.88, 0.060), True),
        (at(0.88, 0.040), False),
        (at(0.5, 0.2, time=15.0), False),
        (at(0.5, 0.2, time=-1.0), False),
    ]
    position = np.stack([case[0][0] for case in cases])
    energy = np.array([case[0][1] for case in cases])
    time = np.array([case[0][2] for case in cases])
    expected = [case[1] for case in cases]
    n = len(cases)
    mask = good_photon_mask(
        event=np.arange(n), energy=energy, position=position, time=time, track_event=np.zeros(0, dtype=np.int64),
        track_position=np.zeros((0, 3)), config=config, num_events=n,
    )  # fmt: skip
    assert mask.tolist() == expected


def test_photon_isolation_from_tracks():
    config = load_detector_config().selection.good_photon
    photon = np.array([[100.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
    near = np.array([[100.0, np.tan(np.deg2rad(8.0)) * 100.0, 0.0]])
    far = np.array([[100.0, np.tan(np.deg2rad(12.0)) * 100.0, 0.0]])
    mask = good_photon_mask(
        event=np.array([0, 1]), energy=np.array([0.3, 0.3]), position=photon, time=np.array([7.0, 7.0]),
        track_event=np.array([0, 1]), track_position=np.concatenate([near, far]), config=config, num_events=2,
    )  # fmt: skip
    assert mask.tolist() == [False, True]


def test_photon_next_to_track_in_full_response(simulate):
    # the isolation uses the track's impact point on the EMC. A mu+ of 1.5 GeV/c along x bends
    # by 5.4 degrees towards -y before reaching 94 cm, so a photon at -5 degrees in phi sits on it.
    # A muon is used because it leaves no split-off showers, which could be good photons themselves.
    num = 2000
    counts = []
    for angle in (-5.0, 30.0):
        radians = np.deg2rad(angle)
        muon = np.tile([1.5, 0.0, 0.0], (num, 1))
        photon = np.tile([0.3 * np.cos(radians), 0.3 * np.sin(radians), 0.0], (num, 1))
        momentum = np.stack([muon, photon], axis=1).reshape(-1, 3)
        pdg = np.tile([-13, 22], num)
        output = simulate(make_chunk(pdg=pdg, momentum=momentum, mass=np.tile([0.10566, 0.0], num), per_event=2))
        counts.append(output["nGoodNeutral"].mean())
    assert counts[0] < 0.1
    assert counts[1] > 0.9
