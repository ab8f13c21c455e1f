"""Tests of the sequential decayer: conservation at every vertex, line shapes, boosts and flight."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pmse_graph.errors import DataError
from pmse_graph.simulation.decay_model import DecayModel
from pmse_graph.simulation.decayer import Decayer, sample_breit_wigner

# (mass, width, max_dm) in GeV, the values of BESIII's pdt.table for the resonances
PROPERTIES = {
    443: (3.0969, 9.29e-05, 0.0),
    113: (0.77549, 0.1494, 0.47),
    223: (0.78265, 0.00849, 0.18),
    211: (0.13957039, 0.0, 0.0),
    -211: (0.13957039, 0.0, 0.0),
    111: (0.1349768, 7.81e-09, 0.0),
    22: (0.0, 0.0, 0.0),
    11: (0.00051099895, 0.0, 0.0),
    -11: (0.00051099895, 0.0, 0.0),
    13: (0.1056583755, 0.0, 0.0),
    -13: (0.1056583755, 0.0, 0.0),
    311: (0.497611, 0.0, 0.0),
    -311: (0.497611, 0.0, 0.0),
    310: (0.497611, 0.0, 0.0),
    321: (0.493677, 0.0, 0.0),
    -321: (0.493677, 0.0, 0.0),
    3122: (1.115683, 0.0, 0.0),
    -3122: (1.115683, 0.0, 0.0),
    2212: (0.93827209, 0.0, 0.0),
    -2212: (0.93827209, 0.0, 0.0),
    2112: (0.93956542, 0.0, 0.0),
    -2112: (0.93956542, 0.0, 0.0),
}


def properties(pdg: int) -> tuple[float, float, float]:
    return PROPERTIES[pdg]


# templates in BESIII's truth layout: (PDG codes, mother indices)
RHO_PI = ([443, 113, 111, 211, -211, 22, 22], [-1, 0, 0, 1, 1, 2, 2])
OMEGA_PIPI = ([443, 223, 211, -211, 211, -211, 111, 22, 22], [-1, 0, 0, 0, 1, 1, 1, 6, 6])
EE = ([443, 11, -11], [-1, 0, 0])
EE_FSR = ([443, 11, -11, -22], [-1, 0, 0, 0])
KS_K = ([443, 311, -321, 211, 310, 211, -211], [-1, 0, 0, 0, 1, 4, 4])
LAMBDA_PAIR = ([443, 3122, -3122, 2212, -211, -2212, 211], [-1, 0, 0, 1, 1, 2, 2])


def flatten(templates: list[tuple[list[int], list[int]]], choice: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.array([len(templates[i][0]) for i in choice])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    pdg = np.concatenate([templates[i][0] for i in choice])
    mother = np.concatenate([templates[i][1] for i in choice])
    return pdg, mother, offsets


def global_mothers(mother: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    event = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    return np.where(mother < 0, -1, mother + offsets[event])


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1), 0.0))


def assert_conserved_at_every_vertex(pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray, p4: np.ndarray) -> None:
    parents = global_mothers(mother, offsets)
    has_mother = parents >= 0
    summed = np.zeros_like(p4)
    np.add.at(summed, parents[has_mother], p4[has_mother])
    decaying = np.bincount(parents[has_mother], minlength=pdg.shape[0]) > 0
    assert decaying.sum() > 0
    np.testing.assert_allclose(summed[decaying], p4[decaying], atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def dec_model() -> DecayModel:
    return DecayModel.from_dec_file()


def test_real_templates_conserve_four_momentum(dec_model: DecayModel) -> None:
    rng = np.random.default_rng(11)
    template_index, catalogue = dec_model.sample(3000, rng)
    templates = [(catalogue[i].pdg, catalogue[i].mother) for i in range(len(catalogue))]
    pdg, mother, offsets = flatten(templates, template_index)

    result = Decayer(properties=dec_model.particle_properties).decay(pdg=pdg, mother=mother, offsets=offsets, rng=rng)

    assert len(np.unique(template_index)) > 300
    assert np.isfinite(result.p4).all()
    assert np.isfinite(result.vertex).all()
    assert_conserved_at_every_vertex(pdg, mother, offsets, result.p4)
    final_mass = invariant_mass(result.p4[result.is_final])
    nominal = np.array([dec_model.particle_properties(22 if code == -22 else int(code))[0] for code in pdg[result.is_final]])
    np.testing.assert_allclose(final_mass, nominal, atol=1e-5)


def test_jpsi_moves_along_x() -> None:
    pdg, mother, offsets = flatten([RHO_PI, EE], np.arange(200) % 2)
    result = Decayer(properties=properties).decay(pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(12))
    jpsi = result.p4[offsets[:-1]]

    np.testing.assert_allclose(jpsi[:, 0], 3.0969 * np.tan(0.011), rtol=1e-12)
    assert abs(jpsi[0, 0] - 0.034) < 0.001
    np.testing.assert_allclose(jpsi[:, 1:3], 0.0, atol=1e-15)
    np.testing.assert_allclose(invariant_mass(jpsi), 3.0969, rtol=1e-12)


@pytest.mark.parametrize("template, pdg_code", [(RHO_PI, 113), (OMEGA_PIPI, 223)])
def test_resonance_masses_follow_breit_wigner(template, pdg_code: int) -> None:
    num = 8000
    pdg, mother, offsets = flatten([template], np.zeros(num, dtype=int))
    result = Decayer(properties=properties).decay(pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(13))

    # the daughters' invariant mass is the resonance's mass
    resonance = np.flatnonzero(pdg == pdg_code)
    parents = global_mothers(mother, offsets)
    summed = np.zeros((pdg.shape[0], 4))
    np.add.at(summed, parents[parents >= 0], result.p4[parents >= 0])
    masses = invariant_mass(summed[resonance])

    nominal, width, max_dm = PROPERTIES[pdg_code]
    daughters_mass = 2 * 0.13957039 if pdg_code == 113 else 2 * 0.13957039 + 0.1349768
    low, high = max(nominal - max_dm, daughters_mass), nominal + max_dm
    scale = nominal * width
    u_low, u_high = np.arctan((low**2 - nominal**2) / scale), np.arctan((high**2 - nominal**2) / scale)

    def cdf(m: np.ndarray) -> np.ndarray:
        return (np.arctan((np.clip(m, low, high) ** 2 - nominal**2) / scale) - u_low) / (u_high - u_low)

    assert masses.min() >= low
    assert masses.max() <= high
    assert stats.kstest(masses, cdf).pvalue > 1e-3
    counts, edges = np.histogram(masses, bins=np.arange(nominal - width, nominal + width, width / 10))
    peak = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    assert abs(peak - nominal) < 0.3 * width


def test_truncated_breit_wigner_stays_in_range() -> None:
    num = 5000
    masses = sample_breit_wigner(
        nominal=np.full(num, 0.77549),
        width=np.full(num, 0.1494),
        low=np.full(num, 0.5),
        high=np.full(num, 0.8),
        rng=np.random.default_rng(14),
    )
    assert masses.min() >= 0.5
    assert masses.max() <= 0.8


def test_dilepton_angle_follows_one_plus_cos_squared() -> None:
    num = 20_000
    pdg, mother, offsets = flatten([EE], np.zeros(num, dtype=int))
    result = Decayer(properties=properties).decay(pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(15))
    electron = result.p4[pdg == 11]
    cos_theta = electron[:, 2] / np.linalg.norm(electron[:, :3], axis=1)

    # <cos^2> is 2/5 for 1 + cos^2 theta and 1/3 for an isotropic decay
    assert abs(np.mean(cos_theta**2) - 0.4) < 0.01


def test_photos_photon_is_soft_and_collinear() -> None:
    num = 5000
    pdg, mother, offsets = flatten([EE_FSR], np.zeros(num, dtype=int))
    result = Decayer(properties=properties, photos_min_fraction=0.01).decay(
        pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(16)
    )
    photon = result.p4[pdg == -22]
    leptons = result.p4[np.isin(pdg, [11, -11])].reshape(num, 2, 4)
    cos_to_lepton = np.einsum("nc,nlc->nl", photon[:, :3], leptons[:, :, :3]) / (
        np.linalg.norm(photon[:, :3], axis=1)[:, None] * np.linalg.norm(leptons[:, :, :3], axis=2)
    )

    assert_conserved_at_every_vertex(pdg, mother, offsets, result.p4)
    assert photon[:, 3].min() > 0.01 * 3.0969 / 2 * 0.9
    assert np.median(photon[:, 3]) < 0.3
    assert np.median(cos_to_lepton.max(axis=1)) > 0.99


@pytest.fixture(scope="module")
def displaced() -> tuple:
    num = 20_000
    pdg, mother, offsets = flatten([KS_K, LAMBDA_PAIR, RHO_PI], np.arange(num) % 3)
    result = Decayer(properties=properties).decay(pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(17))
    return pdg, global_mothers(mother, offsets), result


@pytest.mark.parametrize("code, ctau_cm", [(310, 2.6844), (3122, 7.89)])
def test_ks_and_lambda_fly(displaced, code: int, ctau_cm: float) -> None:
    pdg, parents, result = displaced
    has_mother = np.flatnonzero(parents >= 0)
    first_child = np.full(pdg.shape[0], -1)
    first_child[parents[has_mother][::-1]] = has_mother[::-1]
    decaying = np.flatnonzero(pdg == code)

    length = np.linalg.norm(result.vertex[first_child[decaying]] - result.vertex[decaying], axis=1)
    momentum = np.linalg.norm(result.p4[decaying, :3], axis=1)
    proper = length / (momentum / invariant_mass(result.p4[decaying]))

    assert abs(proper.mean() / ctau_cm - 1.0) < 0.05


def test_pi0_decays_where_made(displaced) -> None:
    pdg, parents, result = displaced
    photons = np.flatnonzero((pdg == 22) & (pdg[np.maximum(parents, 0)] == 111))

    assert photons.size > 1000
    np.testing.assert_array_equal(result.vertex[photons], result.vertex[parents[photons]])


def test_daughters_heavier_than_mother_raise() -> None:
    heavy = dict(PROPERTIES)
    heavy[223] = (0.30, 0.0, 0.0)
    pdg, mother, offsets = flatten([OMEGA_PIPI], np.zeros(3, dtype=int))

    with pytest.raises(DataError, match="below threshold"):
        Decayer(properties=heavy.__getitem__).decay(pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(18))


def test_invalid_mother_index_raises() -> None:
    pdg = np.array([443, 211, -211])
    with pytest.raises(DataError, match="mother index"):
        Decayer(properties=properties).decay(
            pdg=pdg, mother=np.array([-1, 0, 5]), offsets=np.array([0, 3]), rng=np.random.default_rng(19)
        )


def test_tree_needing_breit_wigner_tails_is_generated() -> None:
    # f0(1370) -> rho0 rho0 opens only when both rho0 masses sit below their peak
    tails = dict(PROPERTIES)
    tails[10221] = (1.35, 0.35, 0.2)
    template = ([443, 10221, 22, 113, 113, 211, -211, 211, -211], [-1, 0, 0, 1, 1, 3, 3, 4, 4])
    num = 2000
    pdg, mother, offsets = flatten([template], np.zeros(num, dtype=int))

    result = Decayer(properties=tails.__getitem__).decay(pdg=pdg, mother=mother, offsets=offsets, rng=np.random.default_rng(20))

    assert_conserved_at_every_vertex(pdg, mother, offsets, result.p4)
    parents = global_mothers(mother, offsets)
    summed = np.zeros((pdg.shape[0], 4))
    np.add.at(summed, parents[parents >= 0], result.p4[parents >= 0])
    f0_mass = invariant_mass(summed[pdg == 10221])
    rho_mass = invariant_mass(summed[pdg == 113])
    assert f0_mass.max() <= 1.55 + 1e-9
    assert rho_mass.min() >= 0.77549 - 0.47 - 1e-9
