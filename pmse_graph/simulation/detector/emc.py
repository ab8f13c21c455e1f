"""Electromagnetic calorimeter response: deposited energy, measured clusters, split-offs and merging.

The steps, each a function on whole columns:

1. :func:`deposited_energy` draws what each particle leaves in the 28 cm of CsI(Tl),
   which is 0.71 interaction lengths. Photons and electrons deposit their full energy,
   muons and non-interacting hadrons a minimum-ionising amount, and interacting charged
   hadrons an E/p spread over a wide range. Protons and neutral hadrons deposit part of
   their kinetic energy, antinucleons part of the annihilation energy (so E/p can exceed 1).
2. :func:`measure` turns deposits into clusters: region (barrel, gap, endcap) from
   the impact point, energy and position resolution of that region, and time.
3. :func:`split_off` detaches extra neutral clusters from hadronic showers.
4. :func:`merge_close` merges neutral clusters closer than the merge angle.

Shape variables are drawn at the end by :mod:`emc_shape` once the cluster
energies are final.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.simulation.detector.config import EmcConfig, EmcResolutionConfig
from pmse_graph.simulation.detector.emc_shape import SHOWER_EM, SHOWER_HADRONIC, SHOWER_MIP
from pmse_graph.simulation.detector.geometry import (
    EPS,
    cos_angle_of_pairs,
    cos_theta,
    event_pairs,
    impact_on_cylinder,
    row_norm,
    unit_vectors,
)
from pmse_graph.simulation.detector.particles import Category

REGION_NONE = 0
REGION_BARREL = 1
REGION_GAP = 2
REGION_ENDCAP = 3
NUCLEON_MASS = 0.9389


def region_of(position: np.ndarray, config: EmcConfig) -> np.ndarray:
    """Return the EMC region of impact points, shape ``(n,)`` int8, from their polar angle."""
    abs_cos = np.abs(cos_theta(position))
    region = np.full(position.shape[0], REGION_NONE, dtype=np.int8)
    region[abs_cos < config.endcap_max_abs_cos_theta] = REGION_ENDCAP
    region[abs_cos <= config.endcap_min_abs_cos_theta] = REGION_GAP
    region[abs_cos < config.barrel_max_abs_cos_theta] = REGION_BARREL
    return region


def minimum_ionising(num: int, config: EmcConfig, rng: np.random.Generator) -> np.ndarray:
    """Draw minimum-ionising deposits (GeV) from a Moyal (Landau-like) distribution.

    With Z standard normal, ``-2 ln|Z|`` follows the standard Moyal distribution.
    """
    moyal = -2.0 * np.log(np.maximum(np.abs(rng.standard_normal(num)), 1e-300))
    return np.minimum(config.mip.most_probable_gev + config.mip.width_gev * moyal, config.mip.max_gev)


def deposited_energy(
    *, category: np.ndarray, p4: np.ndarray, config: EmcConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the energy each particle deposits and its shower class.

    Args:
        category: :class:`Category` per particle, shape ``(n,)``.
        p4: lab four-momenta ``(px, py, pz, E)``, shape ``(n, 4)`` GeV.
        config: EMC parameters.
        rng: random generator (a fixed number of draws per particle, so results do not
            depend on how categories mix).

    Returns:
        ``(energy, kind)``: deposits in GeV (0 = nothing left) and shower classes, shape ``(n,)``.
    """
    n = p4.shape[0]
    energy = p4[:, 3]
    p = row_norm(p4[:, :3])
    mass = np.sqrt(np.maximum(energy**2 - p**2, 0.0))
    kinetic = np.maximum(energy - mass, 0.0)

    # every random column is drawn for all particles so the stream does not depend on the mix
    mip = np.minimum(minimum_ionising(n, config, rng), kinetic)
    interacts = rng.random(n)
    eop = config.hadron_eop.low + (config.hadron_eop.high - config.hadron_eop.low) * rng.beta(*config.hadron_eop_beta, size=n)
    fraction = rng.random(n)

    def spread(bounds) -> np.ndarray:
        return bounds.low + (bounds.high - bounds.low) * fraction

    deposit = np.zeros(n)
    kind = np.full(n, SHOWER_EM, dtype=np.int8)

    photon = category == Category.PHOTON
    deposit[photon] = energy[photon]

    electron = category == Category.ELECTRON
    deposit[electron] = config.electron_energy_scale * energy[electron]

    muon = category == Category.MUON
    deposit[muon] = mip[muon]
    kind[muon] = SHOWER_MIP

    hadron = category == Category.CHARGED_HADRON
    hadronic = hadron & (interacts < config.hadron_interaction_probability)
    deposit[hadron] = mip[hadron]
    kind[hadron] = SHOWER_MIP
    deposit[hadronic] = np.minimum(eop[hadronic] * p[hadronic], energy[hadronic])
    kind[hadronic] = SHOWER_HADRONIC

    proton = category == Category.PROTON
    deposit[proton] = spread(config.proton_kinetic_fraction)[proton] * kinetic[proton]
    kind[proton] = SHOWER_MIP

    antinucleon = category == Category.ANTINUCLEON
    annihilation = spread(config.antinucleon_annihilation_fraction) * (energy + NUCLEON_MASS)
    deposit[antinucleon] = annihilation[antinucleon]
    kind[antinucleon] = SHOWER_HADRONIC

    neutral = (category == Category.NEUTRAL_HADRON) & (interacts < config.neutral_hadron_interaction_probability)
    deposit[neutral] = spread(config.neutral_hadron_kinetic_fraction)[neutral] * kinetic[neutral]
    kind[category == Category.NEUTRAL_HADRON] = SHOWER_HADRONIC
    return deposit, kind


def relative_energy_resolution(energy: np.ndarray, resolution: EmcResolutionConfig) -> np.ndarray:
    """Return sigma_E / E for energies in GeV."""
    return np.hypot(resolution.stochastic / np.sqrt(np.maximum(energy, EPS)), resolution.constant)


def position_resolution_cm(energy: np.ndarray, resolution: EmcResolutionConfig) -> np.ndarray:
    """Return the position resolution in cm for energies in GeV."""
    return np.hypot(resolution.position_cm_at_1gev / np.sqrt(np.maximum(energy, EPS)), resolution.position_constant_cm)


@dataclass
class Clusters:
    """Measured EMC clusters before shape variables, each array of shape ``(m,)`` or ``(m, 3)``.

    Attributes:
        energy: cluster energy in GeV.
        position: shower position ``(x, y, z)`` in cm.
        time: time in 50 ns units.
        kind: shower class (``SHOWER_EM``, ``SHOWER_MIP``, ``SHOWER_HADRONIC``).
        region: EMC region (``REGION_BARREL``, ``REGION_GAP``, ``REGION_ENDCAP``).
    """

    energy: np.ndarray
    position: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    region: np.ndarray


def measure(
    *, deposit: np.ndarray, kind: np.ndarray, impact: np.ndarray, config: EmcConfig, rng: np.random.Generator
) -> tuple[Clusters, np.ndarray]:
    """Smear deposits into clusters with the resolution of the EMC region they hit.

    Args:
        deposit: deposited energies, shape ``(n,)`` GeV.
        kind: shower classes, shape ``(n,)``.
        impact: impact points on the EMC front, shape ``(n, 3)`` cm.
        config: EMC parameters.
        rng: random generator.

    Returns:
        ``(clusters, in_emc)``: clusters for all n inputs (energy 0 outside the EMC) and
        the mask of inputs whose impact lies in a region that has crystals.
    """
    n = deposit.shape[0]
    region = region_of(impact, config)
    in_emc = region != REGION_NONE
    barrel = region == REGION_BARREL

    sigma_barrel = relative_energy_resolution(deposit, config.barrel)
    sigma_endcap = relative_energy_resolution(deposit, config.endcap)
    sigma = np.where(barrel, sigma_barrel, sigma_endcap)
    scale = np.where(region == REGION_GAP, config.gap_energy_scale, 1.0)
    energy = np.maximum(deposit * scale * (1.0 + sigma * rng.standard_normal(n)), 0.0)
    energy = np.where(in_emc, energy, 0.0)

    # position smeared in all three coordinates with the resolution of the region
    position_sigma = np.where(
        barrel, position_resolution_cm(energy, config.barrel), position_resolution_cm(energy, config.endcap)
    )
    position = impact + position_sigma[:, None] * rng.standard_normal((n, 3))
    time = np.round(config.time.mean + config.time.sigma * rng.standard_normal(n))
    clusters = Clusters(energy=energy, position=position, time=time, kind=kind.astype(np.int8), region=region)
    return clusters, in_emc


def project_to_emc(direction: np.ndarray, config: EmcConfig) -> np.ndarray:
    """Return where straight lines from the origin along ``direction`` cross the EMC front, shape ``(n, 3)``."""
    n = direction.shape[0]
    impact = impact_on_cylinder(
        vertex=np.zeros((n, 3)),
        momentum=direction,
        charge=np.zeros(n),
        field_tesla=1.0,
        radius_cm=config.barrel_radius_cm,
        half_length_cm=config.endcap_z_cm,
    )
    return impact.position


def split_off(
    *, parent_energy: np.ndarray, parent_position: np.ndarray, config: EmcConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detach split-off clusters from hadronic showers.

    Each parent sheds ``Poisson(mean_count)`` fragments, each carrying a uniform
    fraction of the parent energy, at a Gaussian angular offset from the parent
    direction. Fractions are scaled down where they sum above ``max_total_fraction``.

    Args:
        parent_energy: energies of the hadronic parent clusters, shape ``(k,)`` GeV.
        parent_position: their positions, shape ``(k, 3)`` cm.
        config: EMC parameters.
        rng: random generator.

    Returns:
        ``(parent_of_fragment, fragment_energy, fragment_position, parent_energy_left)`` with
        shapes ``(f,)``, ``(f,)``, ``(f, 3)`` and ``(k,)``.
    """
    k = parent_energy.shape[0]
    counts = rng.poisson(config.split_off.mean_count, size=k)
    parent_of = np.repeat(np.arange(k, dtype=np.int64), counts)
    f = parent_of.shape[0]
    bounds = config.split_off.energy_fraction
    fraction = bounds.low + (bounds.high - bounds.low) * rng.random(f)

    # the fragments of one parent take at most max_total_fraction of its energy
    limit = config.split_off.max_total_fraction
    total = np.bincount(parent_of, weights=fraction, minlength=k)
    shrink = np.where(total > limit, limit / np.maximum(total, EPS), 1.0)
    fraction = fraction * shrink[parent_of]
    fragment_energy = fraction * parent_energy[parent_of]
    energy_left = parent_energy * (1.0 - total * shrink)

    # angular offset in two directions perpendicular to the parent direction
    axis = unit_vectors(parent_position[parent_of])
    helper = np.where(np.abs(axis[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    u = unit_vectors(np.cross(axis, helper))
    v = np.cross(axis, u)
    sigma = np.deg2rad(config.split_off.angle_sigma_deg)
    offsets = sigma * rng.standard_normal((f, 2))
    direction = axis + offsets[:, :1] * u + offsets[:, 1:] * v
    fragment_position = project_to_emc(direction, config)
    return parent_of, fragment_energy, fragment_position, energy_left


def merge_close(
    *, energy: np.ndarray, position: np.ndarray, event: np.ndarray, num_events: int, config: EmcConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Merge each neutral cluster into its most energetic neighbour within the merge angle.

    Args:
        energy: cluster energies, shape ``(m,)`` GeV.
        position: cluster positions, shape ``(m, 3)`` cm.
        event: event index per cluster, sorted ascending, shape ``(m,)``.
        num_events: number of events in the chunk.
        config: EMC parameters.

    Returns:
        ``(energy, survives)``: energies after merging and the mask of clusters that
        were not absorbed, shape ``(m,)``.
    """
    m = energy.shape[0]
    energy = energy.copy()
    survives = np.ones(m, dtype=bool)
    if m == 0 or config.merge_angle_deg <= 0.0:
        return energy, survives
    rows_a, rows_b = event_pairs(event, event, num_events)
    distinct = rows_a < rows_b
    rows_a, rows_b = rows_a[distinct], rows_b[distinct]
    unit = unit_vectors(position)
    close = cos_angle_of_pairs(unit, unit, rows_a, rows_b) > np.cos(np.deg2rad(config.merge_angle_deg))
    rows_a, rows_b = rows_a[close], rows_b[close]
    if rows_a.shape[0] == 0:
        return energy, survives

    # the lower-energy cluster of each pair is absorbed by the higher one
    a_wins = energy[rows_a] >= energy[rows_b]
    winner = np.where(a_wins, rows_a, rows_b)
    loser = np.where(a_wins, rows_b, rows_a)
    order = np.argsort(-energy[winner], kind="stable")
    loser_unique, first = np.unique(loser[order], return_index=True)
    target = winner[order][first]

    # a winner that is itself absorbed passes the energy on one step
    # NOTE: in a chain of three or more merges the energy of the far end is lost. At a
    # 4 degree merge angle such a chain needs three showers within a few crystals.
    absorbed_by = np.arange(m)
    absorbed_by[loser_unique] = target
    target = absorbed_by[target]
    np.add.at(energy, target, energy[loser_unique])
    energy[loser_unique] = 0.0
    survives[loser_unique] = False
    return energy, survives
