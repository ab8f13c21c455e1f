"""EMC showers: energy resolution, the pi0 peak, response per particle type, shapes, thresholds."""

from __future__ import annotations

import awkward as ak
import numpy as np
from tests.simulation.detector.builders import isotropic_directions, make_chunk, single_particles

from pmse_graph.simulation.detector import MISSING, load_detector_config
from pmse_graph.simulation.detector.emc import merge_close, relative_energy_resolution, split_off

PI0_MASS = 0.1349768


def flat(output: dict, name: str, charged: bool | None = None) -> np.ndarray:
    values = output[name]
    if charged is not None:
        values = values[(output["q"] != 0) if charged else (output["q"] == 0)]
    return ak.flatten(values).to_numpy()


def robust_sigma(values: np.ndarray) -> float:
    """Half the 16-84% interval: the Gaussian core width, insensitive to tails."""
    low, high = np.percentile(values, [15.865, 84.135])
    return 0.5 * (high - low)


def test_photon_resolution_barrel(simulate):
    output = simulate(single_particles(22, 0.0, 1.0, 20000, cos_range=(-0.75, 0.75)))
    energy = flat(output, "emc_energy")
    assert abs(np.median(energy) - 1.0) < 0.003
    assert 0.023 < robust_sigma(energy) < 0.027


def test_photon_resolution_endcap(simulate):
    output = simulate(single_particles(22, 0.0, 1.0, 20000, cos_range=(0.86, 0.92)))
    energy = flat(output, "emc_energy")
    assert 0.046 < robust_sigma(energy) < 0.054


def test_photon_acceptance_regions(simulate):
    output = simulate(single_particles(22, 0.0, 0.5, 20000))
    cos = flat(output, "emc_z") / np.linalg.norm(
        np.stack([flat(output, "emc_x"), flat(output, "emc_y"), flat(output, "emc_z")], axis=1), axis=1
    )
    # photons reach crystals up to |cos theta| = 0.93 (position resolution blurs the edge slightly)
    assert 0.90 < output["nNeutral"].mean() < 0.95
    assert np.mean(np.abs(cos) > 0.94) < 0.002


def two_photon_decays(momentum: float, num: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Decay pi0s of fixed momentum and random direction isotropically; return both photons' momenta."""
    rng = np.random.default_rng(seed)
    half = 0.5 * PI0_MASS
    rest = half * isotropic_directions(rng, num)
    direction = isotropic_directions(rng, num, cos_range=(-0.7, 0.7))
    energy = np.hypot(momentum, PI0_MASS)
    beta = momentum / energy
    gamma = energy / PI0_MASS
    photons = []
    for sign in (1.0, -1.0):
        p_rest = sign * rest
        parallel = np.sum(p_rest * direction, axis=1)
        boosted_parallel = gamma * (parallel + beta * half)
        photons.append(p_rest + (boosted_parallel - parallel)[:, None] * direction)
    return photons[0], photons[1]


def test_pi0_mass_peak(simulate):
    num = 8000
    first, second = two_photon_decays(0.5, num)
    momenta = np.stack([first, second], axis=1).reshape(-1, 3)
    chunk = make_chunk(pdg=np.full(2 * num, 22), momentum=momenta, mass=np.zeros(2 * num), per_event=2)
    output = simulate(chunk)
    two = output["nNeutral"] == 2
    energy = output["emc_energy"][two].to_numpy()
    position = np.stack([output[name][two].to_numpy() for name in ("emc_x", "emc_y", "emc_z")], axis=2)
    direction = position / np.linalg.norm(position, axis=2, keepdims=True)
    cos_open = np.sum(direction[:, 0] * direction[:, 1], axis=1)
    mass = np.sqrt(2.0 * energy[:, 0] * energy[:, 1] * (1.0 - cos_open))
    assert two.mean() > 0.7
    assert abs(np.median(mass) - PI0_MASS) < 0.002

    # width expected from the energy resolution alone: sigma_m / m = sqrt(r1^2 + r2^2) / 2
    barrel = load_detector_config().emc.barrel
    expected = 0.5 * PI0_MASS * np.sqrt(
        relative_energy_resolution(energy[:, 0], barrel) ** 2 + relative_energy_resolution(energy[:, 1], barrel) ** 2
    )
    measured = robust_sigma(mass)
    # position resolution adds a little on top of the energy term
    assert np.median(expected) < measured < 1.5 * np.median(expected)


def test_electron_eop_near_one(simulate):
    output = simulate(single_particles(11, 0.000511, 1.0, 5000, cos_range=(-0.8, 0.8)))
    eop = flat(output, "EoP", charged=True)
    eop = eop[eop != MISSING]
    assert 0.94 < np.median(eop) < 1.0
    assert np.mean(eop > 0.8) > 0.97


def test_muon_leaves_minimum_ionising_deposit(simulate):
    output = simulate(single_particles(13, 0.10566, 1.0, 5000, cos_range=(-0.8, 0.8)))
    energy = flat(output, "emc_energy", charged=True)
    energy = energy[energy != MISSING]
    hits = flat(output, "emc_numHits", charged=True)
    hits = hits[hits != int(MISSING)]
    lateral = flat(output, "emc_latmom", charged=True)
    lateral = lateral[lateral != MISSING]
    assert 0.16 < np.median(energy) < 0.25
    assert np.mean(hits <= 4) > 0.9
    assert np.median(lateral) < 0.05


def test_charged_pion_mip_or_hadronic(simulate):
    output = simulate(single_particles(211, 0.13957, 1.0, 8000, cos_range=(-0.8, 0.8)))
    eop = flat(output, "EoP", charged=True)
    eop = eop[eop != MISSING]
    mip_like = np.mean(eop < 0.27)
    assert 0.35 < mip_like < 0.65
    assert np.percentile(eop, 95) < 0.85


def test_hadronic_showers_wider_than_photons(simulate):
    pions = simulate(single_particles(211, 0.13957, 1.0, 5000, cos_range=(-0.8, 0.8)))
    photons = simulate(single_particles(22, 0.0, 0.5, 5000, cos_range=(-0.8, 0.8)))
    pion_eop = flat(pions, "EoP", charged=True)
    hadronic = (pion_eop != MISSING) & (pion_eop > 0.3)
    pion_lateral = flat(pions, "emc_latmom", charged=True)[hadronic]
    photon_lateral = flat(photons, "emc_latmom")
    assert np.median(pion_lateral) > np.median(photon_lateral) + 0.1
    pion_second = flat(pions, "emc_secmom", charged=True)[hadronic]
    assert np.median(pion_second) > np.median(flat(photons, "emc_secmom"))


def test_proton_small_and_antiproton_large_eop(simulate):
    protons = simulate(single_particles(2212, 0.938272, 1.0, 4000, cos_range=(-0.8, 0.8)))
    antiprotons = simulate(single_particles(-2212, 0.938272, 0.5, 4000, cos_range=(-0.8, 0.8)))
    proton_eop = flat(protons, "EoP", charged=True)
    antiproton_eop = flat(antiprotons, "EoP", charged=True)
    assert np.median(proton_eop[proton_eop != MISSING]) < 0.45
    assert np.mean(antiproton_eop[antiproton_eop != MISSING] > 1.0) > 0.2


def test_neutral_hadrons_leave_clusters_half_the_time(simulate):
    for pdg, mass in ((2112, 0.939565), (130, 0.497611), (-2112, 0.939565)):
        output = simulate(single_particles(pdg, mass, 0.8, 4000, cos_range=(-0.8, 0.8)))
        has_cluster = np.mean(output["nNeutral"] > 0)
        if pdg == -2112:
            assert has_cluster > 0.9
        else:
            assert 0.35 < has_cluster < 0.6


def test_shower_energy_ordering(simulate):
    rng = np.random.default_rng(11)
    species = rng.choice([22, 11, 13, 211, 2212, -2212, 2112], size=6000)
    masses = {22: 0.0, 11: 0.000511, 13: 0.10566, 211: 0.13957, 2212: 0.938272, -2212: 0.938272, 2112: 0.939565}
    momentum = rng.uniform(0.05, 1.5, size=6000)[:, None] * isotropic_directions(rng, 6000)
    chunk = make_chunk(pdg=species, momentum=momentum, mass=np.array([masses[s] for s in species]), per_event=6)
    output = simulate(chunk)
    energy = flat(output, "emc_energy")
    present = energy != MISSING
    e3x3, e5x5 = flat(output, "emc_e3x3")[present], flat(output, "emc_e5x5")[present]
    assert (e3x3 <= e5x5 + 1e-12).all()
    assert (e5x5 <= energy[present] + 1e-12).all()
    assert (energy[present] >= 0.020).all()
    hits = flat(output, "emc_numHits")[present]
    assert (hits >= 1).all()
    lateral = flat(output, "emc_latmom")[present]
    assert ((lateral >= 0.0) & (lateral <= 1.0)).all()
    assert (lateral[hits < 3] == 0.0).all()


def test_photons_below_threshold_are_lost(simulate):
    output = simulate(single_particles(22, 0.0, 0.012, 3000, cos_range=(-0.7, 0.7)))
    assert output["nNeutral"].mean() < 0.02


def test_close_photons_merge(simulate):
    num = 2000
    rng = np.random.default_rng(2)
    axis = isotropic_directions(rng, num, cos_range=(-0.6, 0.6))
    tilt = np.cross(axis, [0.0, 0.0, 1.0])
    tilt /= np.linalg.norm(tilt, axis=1, keepdims=True)
    close = axis + np.tan(np.deg2rad(1.0)) * tilt
    close /= np.linalg.norm(close, axis=1, keepdims=True)
    momenta = np.stack([0.4 * axis, 0.2 * close], axis=1).reshape(-1, 3)
    output = simulate(make_chunk(pdg=np.full(2 * num, 22), momentum=momenta, mass=np.zeros(2 * num), per_event=2))
    single = output["nNeutral"] == 1
    assert single.mean() > 0.95
    energy = ak.flatten(output["emc_energy"][single]).to_numpy()
    assert abs(np.median(energy) - 0.6) < 0.01


def test_split_offs_near_hadron_tracks(simulate):
    output = simulate(single_particles(211, 0.13957, 1.0, 5000, cos_range=(-0.7, 0.7)))
    neutral = output["q"] == 0
    truth = ak.flatten(output["mc_idx"][neutral]).to_numpy()
    assert (truth == -1).mean() > 0.8
    assert 0.1 < output["nNeutral"].mean() < 0.5
    # split-offs are in time, so the time window does not remove them
    time = ak.flatten(output["emc_time"][neutral]).to_numpy()
    assert np.mean((time >= 0) & (time <= 14)) > 0.99


def test_emc_time_window(simulate):
    output = simulate(single_particles(22, 0.0, 0.3, 5000, cos_range=(-0.7, 0.7)))
    time = flat(output, "emc_time")
    assert np.mean((time >= 0) & (time <= 14)) > 0.99
    assert np.allclose(time, np.round(time))


def test_noise_clusters(default_response):
    # events with only a neutrino: every shower is beam background or noise
    chunk = make_chunk(pdg=np.full(20000, 12), momentum=np.tile([0.3, 0.0, 0.0], (20000, 1)), mass=np.zeros(20000))
    output = default_response.simulate(chunk, np.random.default_rng(9))
    noise = default_response.config.emc.noise
    assert output["nCharged"].sum() == 0
    assert abs(output["nNeutral"].mean() - noise.mean_count) < 0.05
    assert (ak.flatten(output["mc_idx"]).to_numpy() == -1).all()
    time = ak.flatten(output["emc_time"]).to_numpy()
    assert abs(np.mean(time > 14) - (noise.max_time - 15) / noise.max_time) < 0.02
    assert output["nGoodNeutral"].mean() < 0.5 * output["nNeutral"].mean()


def test_split_off_conserves_parent_energy():
    config = load_detector_config().emc
    rng = np.random.default_rng(4)
    parent_energy = rng.uniform(0.1, 1.0, size=3000)
    parent_position = 94.0 * isotropic_directions(rng, 3000, cos_range=(-0.7, 0.7))
    parent_of, fragment_energy, _, energy_left = split_off(
        parent_energy=parent_energy, parent_position=parent_position, config=config, rng=rng
    )
    shed = np.bincount(parent_of, weights=fragment_energy, minlength=3000)
    assert np.allclose(shed + energy_left, parent_energy)
    assert (energy_left >= (1.0 - config.split_off.max_total_fraction) * parent_energy - 1e-12).all()
    assert parent_of.shape[0] > 0


def test_merge_conserves_energy():
    config = load_detector_config().emc
    position = np.array([[94.0, 0.0, 0.0], [94.0, 2.0, 0.0], [0.0, 94.0, 0.0], [94.0, 0.0, 0.0]])
    energy = np.array([0.5, 0.1, 0.3, 0.2])
    event = np.array([0, 0, 0, 1])
    merged, survives = merge_close(energy=energy, position=position, event=event, num_events=2, config=config)
    # the first two are 1.2 degrees apart in one event; the last one is alone in its event
    assert survives.tolist() == [True, False, True, True]
    assert np.allclose(merged[survives], [0.6, 0.3, 0.2])
