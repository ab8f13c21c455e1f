"""Sequential decays that give every particle of many decay trees a four-momentum and a vertex.

:class:`Decayer` takes decay trees in BESIII's truth layout: flat PDG codes and mother indices
with per-event offsets, the J/psi first and every mother before its daughters. It generates
the kinematics of all events of a chunk at once, whatever tree each event has:

1. Masses. Stable particles and the J/psi take their nominal mass. A resonance with a width
   and a Breit-Wigner cut-off takes a mass from the relativistic Breit-Wigner
   ``dN/ds ~ 1 / ((s - M^2)^2 + M^2 Gamma^2)`` (constant width), truncated to
   ``M +- max_dm`` and above the sum of its own daughters' masses. Masses are drawn from the
   deepest level up, and an event whose daughters outweigh their mother anywhere draws all
   its masses again. That samples the truncated Breit-Wigners restricted to the allowed
   region exactly. The line shape carries no phase-space or barrier factor of the decay that
   produces the resonance. Events still failing after 20 rounds (trees that need a Breit-Wigner tail,
   such as f0(1370) -> rho0 rho0) are drawn top-down instead: each resonance within the room
   its mother and sisters leave. That succeeds whenever the smallest allowed masses fit (else
   a ``DataError`` names the tree), but it favours the first sister.
2. Decays, top level first, batched over all decays of one level with the same number of
   daughters: n-body phase space in the mother's rest frame, unweighted by accept-reject
   (:mod:`pmse_graph.simulation.phasespace`), then boosted into the lab.
3. Flight. A decaying particle with ``c tau`` of at least 1 um (KS: 2.68 cm, Lambda: 7.89 cm,
   hyperons, charm) travels ``beta gamma c tau`` times an exponential number before decaying,
   so its daughters start at a displaced vertex. Shorter-lived particles (pi0, eta, all
   strong resonances) decay where they are made.

The J/psi comes from e+e- at BEPCII, whose beams cross at 22 mrad, so it moves along x with
``px = M tan(11 mrad)`` (0.034 GeV/c). Its production vertex is drawn from a Gaussian beam
spot whose widths are parameters (zero by default).

DEC models honoured:
- ``PHSP`` and every model not listed here: isotropic n-body phase space.
- ``VLL`` for J/psi -> e+e- and mu+mu-: ``1 + cos^2 theta`` about the beam axis, as for a
  J/psi polarised by e+e- annihilation. The decay is recognised by its PDG codes, so a
  J/psi -> l+ l- line with another model gets this distribution too. Other vector decays (``VSS``, ``VVS_PWAVE``,
  helicity amplitudes) stay isotropic.
- ``PHOTOS``: a daughter with PDG code -22 is a final-state radiation photon. Its energy
  fraction ``x = k / k_max`` follows ``(1 + (1 - x)^2) / x`` above ``photos_min_fraction``,
  its direction peaks along a charged sister as ``1 / (1 - beta cos theta)``, and the other
  daughters share the rest of the four-momentum in phase space. This imitates PHOTOS's
  leading-log spectrum but not its matrix elements or multi-photon emission.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pmse_graph.errors import DataError
from pmse_graph.simulation.phasespace import PhaseSpaceSampler, boost, boost_to_lab, isotropic_directions
from pmse_graph.simulation.tree_index import TreeIndex

logger = logging.getLogger(__name__)

HBAR_C_GEV_CM = 1.973269804e-14
"""hbar c in GeV cm, to turn a width into c tau."""

MIN_FLIGHT_CTAU_CM = 1e-4
"""Particles with a shorter c tau (1 um) decay at their production vertex."""

PHOTOS_PDG = -22
LEPTON_PDG = frozenset({11, 13})
JPSI_PDG = 443
MASS_ROUNDS = 20
"""Rounds of bottom-up mass draws before the remaining events are drawn top-down."""

MASS_MARGIN = 1e-9
"""Smallest kinetic energy (GeV) left in a decay, so that no decay sits exactly at threshold."""

PropertiesFn = Callable[[int], tuple[float, float, float]]
"""``pdg -> (mass, width, max_dm)`` in GeV, the decay model's particle table."""


@dataclass
class DecayedParticles:
    """Kinematics of flattened particles, in the order of the input arrays.

    Attributes:
        p4: lab four-momenta ``(px, py, pz, E)`` in GeV, shape ``(num_particles, 4)``.
        vertex: production vertices ``(x, y, z)`` in cm, shape ``(num_particles, 3)``.
        is_final: True for particles without daughters, shape ``(num_particles,)``.
    """

    p4: np.ndarray
    vertex: np.ndarray
    is_final: np.ndarray


class SpeciesTable:
    """Per-PDG properties as arrays, filled on first use from the decay model and ``particle``."""

    def __init__(self, properties: PropertiesFn) -> None:
        self._properties = properties
        self._codes = np.zeros(0, dtype=np.int64)
        self._values = np.zeros((0, 5))

    def lookup(self, pdg: np.ndarray) -> np.ndarray:
        """Return ``(mass, width, max_dm, ctau_cm, charge)`` per particle, shape ``(num, 5)``."""
        codes = np.unique(pdg)
        missing = codes[~np.isin(codes, self._codes)]
        if missing.size:
            rows = np.array([self._describe(int(code)) for code in missing]).reshape(-1, 5)
            codes_all = np.concatenate([self._codes, missing])
            order = np.argsort(codes_all)
            self._codes = codes_all[order]
            self._values = np.concatenate([self._values, rows])[order]
        return self._values[np.searchsorted(self._codes, pdg)]

    def _describe(self, code: int) -> tuple[float, float, float, float, float]:
        species = 22 if code == PHOTOS_PDG else code
        try:
            mass, width, max_dm = self._properties(species)
        except (KeyError, LookupError, ValueError) as exc:
            raise DataError(f"No mass known for PDG code {code}: {exc}; add it to the particle table") from exc
        ctau_cm, charge = _particle_lifetime_and_charge(species)
        if ctau_cm is None:
            ctau_cm = HBAR_C_GEV_CM / width if width > 0 else 0.0
        return float(mass), float(width), float(max_dm), float(ctau_cm), float(charge)


def _particle_lifetime_and_charge(code: int) -> tuple[float | None, float]:
    """Return ``(c tau in cm or None, charge)`` from ``particle``; unknown codes give ``(None, 0)``."""
    from particle import Particle
    from particle.particle import ParticleNotFound, InvalidParticle

    try:
        particle = Particle.from_pdgid(code)
    except (ParticleNotFound, InvalidParticle, ValueError):
        return None, 0.0
    ctau_mm = particle.ctau
    charge = particle.charge or 0.0
    if ctau_mm is None or not np.isfinite(ctau_mm):
        return None, float(charge)
    return float(ctau_mm) / 10.0, float(charge)


def sample_breit_wigner(
    *, nominal: np.ndarray, width: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw masses from relativistic Breit-Wigners truncated to ``[low, high]`` by inverting the CDF in s.

    All arrays have shape ``(num,)`` in GeV; ``low < high`` and ``width > 0`` are required.
    """
    scale = nominal * width
    u_low = np.arctan((low * low - nominal * nominal) / scale)
    u_high = np.arctan((high * high - nominal * nominal) / scale)
    u = u_low + (u_high - u_low) * rng.random(nominal.shape[0])
    s = nominal * nominal + scale * np.tan(u)
    return np.clip(np.sqrt(np.maximum(s, 0.0)), low, high)


class Decayer:
    """Generates four-momenta and vertices for flattened decay trees.

    Args:
        properties: ``pdg -> (mass, width, max_dm)`` in GeV (the decay model's table).
        crossing_half_angle: half the beam crossing angle in rad (default 0.011, BEPCII).
        beam_spot_sigma: Gaussian widths of the interaction point along x, y, z in cm
            (default zero).
        photos_min_fraction: smallest radiated photon energy as a fraction of its maximum
            (default 0.01).
        sampler: phase-space sampler; a new one by default.
    """

    def __init__(
        self,
        *,
        properties: PropertiesFn,
        crossing_half_angle: float = 0.011,
        beam_spot_sigma: tuple[float, float, float] = (0.0, 0.0, 0.0),
        photos_min_fraction: float = 0.01,
        sampler: PhaseSpaceSampler | None = None,
    ) -> None:
        if not 0.0 < photos_min_fraction < 1.0:
            raise ValueError(f"Expected 0 < photos_min_fraction < 1 (got {photos_min_fraction})")
        self.species = SpeciesTable(properties)
        self.crossing_half_angle = crossing_half_angle
        self.beam_spot_sigma = np.asarray(beam_spot_sigma, dtype=np.float64)
        self.photos_min_fraction = photos_min_fraction
        self.sampler = sampler or PhaseSpaceSampler()

    def decay(self, *, pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray, rng: np.random.Generator) -> DecayedParticles:
        """Generate the kinematics of every particle.

        Args:
            pdg: PDG codes, shape ``(num_particles,)``; -22 is a PHOTOS photon.
            mother: mother index within the event, -1 for the J/psi, shape ``(num_particles,)``.
            offsets: event starts, shape ``(num_events + 1,)``.
            rng: random generator.

        Returns:
            Lab four-momenta, production vertices and the final-state flags.

        Raises:
            DataError: for an unknown species or a decay that cannot reach its threshold.
        """
        tree = TreeIndex.build(pdg=np.asarray(pdg), mother=np.asarray(mother), offsets=np.asarray(offsets))
        props = self.species.lookup(tree.pdg)
        masses = self._sample_masses(tree, props, rng)

        num_particles = tree.pdg.shape[0]
        p4 = np.zeros((num_particles, 4))
        vertex = np.zeros((num_particles, 3))
        roots = tree.roots
        root_mass = masses[roots]
        p4[roots, 0] = root_mass * np.tan(self.crossing_half_angle)
        p4[roots, 3] = root_mass / np.cos(self.crossing_half_angle)
        if np.any(self.beam_spot_sigma > 0):
            vertex[roots] = rng.normal(size=(roots.size, 3)) * self.beam_spot_sigma

        for level in range(tree.max_depth):
            parents = tree.parents_at(level)
            if parents.size == 0:
                continue
            num_children = tree.num_children[parents]
            ctau_cm = np.where(num_children > 1, props[parents, 3], 0.0)
            decay_vertex = vertex[parents] + self._flight(p4[parents], masses[parents], ctau_cm, rng)
            for k in np.unique(num_children):
                group = parents[num_children == k]
                children = tree.children_matrix(group, int(k))
                if k == 1:
                    # a relabelling (K0 -> KS): the daughter takes over the mass and four-momentum
                    masses[children[:, 0]] = masses[group]
                    p4[children[:, 0]] = p4[group]
                else:
                    self._decay_group(tree, props, masses, p4, group, children, rng)
                vertex[children] = decay_vertex[num_children == k][:, None, :]
        return DecayedParticles(p4=p4, vertex=vertex, is_final=tree.num_children == 0)

    def _sample_masses(self, tree: TreeIndex, props: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        masses = props[:, 0].copy()

        # bottom-up draws, repeated for the events whose daughters outweigh a mother somewhere
        pending = np.arange(tree.num_events)
        subtree, index = tree, np.arange(tree.pdg.shape[0])
        for _ in range(MASS_ROUNDS):
            drawn = self._draw_bottom_up(subtree, props[index], rng)
            masses[index] = drawn
            failed = self._events_below_threshold(subtree, drawn)
            if not failed.any():
                return masses
            pending = pending[failed]
            subtree, index = tree.subset(pending)

        # the rare trees that need Breit-Wigner tails: draw top-down inside the mother's mass
        masses[index] = self._draw_top_down(subtree, props[index], rng)
        return masses

    def _draw_bottom_up(self, tree: TreeIndex, props: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw resonance masses from the deepest level up, each above its daughters' summed mass."""
        nominal, width, max_dm = props[:, 0], props[:, 1], props[:, 2]
        resonant = _resonant(tree, props)
        masses = nominal.copy()
        for level in range(tree.max_depth - 1, 0, -1):
            at_level = tree.by_depth[level][resonant[tree.by_depth[level]]]
            if at_level.size == 0:
                continue
            daughter_sum = tree.children_mass_sum(masses, level=level + 1)[at_level]
            low = np.maximum(nominal[at_level] - max_dm[at_level], daughter_sum + MASS_MARGIN)
            masses[at_level] = self._draw(nominal, width, at_level, low, nominal[at_level] + max_dm[at_level], rng)
        return masses

    def _draw_top_down(self, tree: TreeIndex, props: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw resonance masses from the top down, each inside the room its mother and sisters leave.

        Raises:
            DataError: when a tree stays below threshold even at its smallest allowed masses.
        """
        nominal, width, max_dm = props[:, 0], props[:, 1], props[:, 2]
        resonant = _resonant(tree, props)
        minimum, too_heavy = _closed_decays(tree, props)
        if too_heavy.any():
            event = int(tree.event[np.flatnonzero(too_heavy)[0]])
            codes = tree.pdg[tree.offsets[event] : tree.offsets[event + 1]].tolist()
            raise DataError(
                f"Decay tree below threshold: the daughters of some particle weigh more than its largest allowed mass "
                f"even at their smallest masses (tree PDG codes {codes}); check the decay table's masses and cut-offs"
            )
        high_edge = np.where(resonant, nominal + max_dm, nominal)

        masses = nominal.copy()
        for level in range(1, tree.max_depth):
            at_level = tree.by_depth[level]
            for rank in range(int(tree.sibling_rank[at_level].max()) + 1):
                draw = at_level[(tree.sibling_rank[at_level] == rank) & resonant[at_level]]
                if draw.size == 0:
                    continue
                # room left by the sisters: drawn masses before this one, smallest masses after it
                sisters = at_level[tree.sibling_rank[at_level] != rank]
                sister_mass = np.where(tree.sibling_rank[sisters] < rank, masses[sisters], minimum[sisters])
                used = np.bincount(tree.global_mother[sisters], weights=sister_mass, minlength=tree.pdg.shape[0])
                room = masses[tree.global_mother[draw]] - used[tree.global_mother[draw]] - MASS_MARGIN
                high = np.minimum(high_edge[draw], room)
                low = np.minimum(minimum[draw], high)
                masses[draw] = self._draw(nominal, width, draw, low, high, rng)
        return masses

    @staticmethod
    def _draw(
        nominal: np.ndarray, width: np.ndarray, index: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw Breit-Wigner masses of particles ``index``; an empty range gives its lower edge."""
        open_range = low < high
        drawn = sample_breit_wigner(
            nominal=nominal[index], width=width[index], low=np.where(open_range, low, high - 1e-6), high=high, rng=rng
        )
        return np.where(open_range, drawn, low)

    @staticmethod
    def _events_below_threshold(tree: TreeIndex, masses: np.ndarray) -> np.ndarray:
        """Return, per event, whether some particle with two or more daughters is lighter than their sum.

        A single daughter (K0 -> KS) is a relabelling that takes over its mother's four-momentum.
        """
        closed = (tree.children_mass_sum(masses) >= masses - MASS_MARGIN) & (tree.num_children > 1)
        return np.bincount(tree.event[closed], minlength=tree.num_events) > 0

    def closed_decays(self, *, pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Return, per tree, the first particle that no mass draw can decay, or -1 when every decay is open.

        A decay is closed when its daughters, each at the smallest mass its own decays allow,
        weigh more than the mother's largest allowed mass. The generator checks its templates
        with this before writing anything.

        Args:
            pdg: PDG codes, shape ``(num_particles,)``.
            mother: mother index within the tree, -1 for the root, shape ``(num_particles,)``.
            offsets: tree starts, shape ``(num_trees + 1,)``.

        Returns:
            Index within its tree of the first closed decay, shape ``(num_trees,)`` int64.
        """
        tree = TreeIndex.build(pdg=np.asarray(pdg), mother=np.asarray(mother), offsets=np.asarray(offsets))
        _, too_heavy = _closed_decays(tree, self.species.lookup(tree.pdg))
        first = np.full(tree.num_events, -1, dtype=np.int64)
        closed = np.flatnonzero(too_heavy)[::-1]  # reversed, so the first of each tree is written last
        first[tree.event[closed]] = closed - tree.offsets[tree.event[closed]]
        return first

    def _flight(self, parent_p4: np.ndarray, parent_mass: np.ndarray, ctau_cm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flight = np.zeros((parent_p4.shape[0], 3))
        moving = np.flatnonzero(ctau_cm >= MIN_FLIGHT_CTAU_CM)
        if moving.size:
            length = ctau_cm[moving] * rng.exponential(size=moving.size) / parent_mass[moving]
            flight[moving] = parent_p4[moving, :3] * length[:, None]
        return flight

    def _decay_group(
        self,
        tree: TreeIndex,
        props: np.ndarray,
        masses: np.ndarray,
        p4: np.ndarray,
        parents: np.ndarray,
        children: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        child_pdg = tree.pdg[children]
        radiative = (child_pdg == PHOTOS_PDG).any(axis=1)
        if radiative.any() and children.shape[1] > 2:
            self._decay_radiative(tree, props, masses, p4, parents[radiative], children[radiative], rng)
            parents, children = parents[~radiative], children[~radiative]
        if parents.size == 0:
            return
        rest = self._phase_space(tree, masses, props[:, 0], masses[parents], parents, children, rng)
        p4[children] = boost_to_lab(rest, p4[parents])

    def _phase_space(
        self,
        tree: TreeIndex,
        masses: np.ndarray,
        nominal: np.ndarray,
        parent_mass: np.ndarray,
        parents: np.ndarray,
        children: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Unweighted decays of ``parents`` into ``children`` in the rest frame of mass ``parent_mass``.

        The bound factors come from the nominal masses, so Breit-Wigner draws do not multiply
        the mass configurations that need a trial.
        """
        angular = None
        if children.shape[1] == 2:
            dilepton = _dilepton_rows(np.concatenate([tree.pdg[parents, None], tree.pdg[children]], axis=1))
            if dilepton.any():
                angular = _masked_weight(_dilepton_angular_weight, dilepton)
        return self.sampler.generate(
            parent_mass=parent_mass,
            daughter_masses=masses[children],
            rng=rng,
            factor=self.sampler.factors_for(parent_mass=nominal[parents], daughter_masses=nominal[children]),
            angular_weight=angular,
        )

    def _decay_radiative(
        self,
        tree: TreeIndex,
        props: np.ndarray,
        masses: np.ndarray,
        p4: np.ndarray,
        parents: np.ndarray,
        children: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Decays with one PHOTOS photon: the photon first, then phase space for the rest."""
        is_photon = tree.pdg[children] == PHOTOS_PDG
        photon_column = np.argmax(is_photon, axis=1)
        num, k = children.shape
        keep = np.ones((num, k), dtype=bool)
        keep[np.arange(num), photon_column] = False
        others = children[keep].reshape(num, k - 1)
        photons = children[np.arange(num), photon_column]

        # photon energy fraction x = k / k_max from (1 + (1 - x)^2) / x by accept-reject on 1 / x
        parent_mass = masses[parents]
        others_mass = masses[others].sum(axis=1)
        k_max = (parent_mass**2 - others_mass**2) / (2.0 * parent_mass)
        fraction = np.empty(num)
        pending = np.arange(num)
        while pending.size:
            x = self.photos_min_fraction ** rng.random(pending.size) * (1.0 - 1e-9)
            accept = rng.random(pending.size) < 0.5 * (1.0 + (1.0 - x) ** 2)
            fraction[pending[accept]] = x[accept]
            pending = pending[~accept]
        energy = fraction * k_max
        recoil_mass = np.sqrt(parent_mass * parent_mass - 2.0 * parent_mass * energy)

        # the other daughters in the frame of the recoiling system
        rest = self._phase_space(tree, masses, props[:, 0], recoil_mass, parents, others, rng)

        # photon direction along a charged sister, 1 / (1 - beta cos theta) in the polar angle
        charge = props[others, 4]
        weights = (charge != 0) * rng.random(charge.shape)
        emitter = np.argmax(weights, axis=1)
        has_emitter = weights.max(axis=1) > 0
        emitter_p4 = rest[np.arange(num), emitter]
        emitter_momentum = np.linalg.norm(emitter_p4[:, :3], axis=1)
        axis = emitter_p4[:, :3] / np.maximum(emitter_momentum, 1e-12)[:, None]
        axis[~has_emitter] = isotropic_directions(int((~has_emitter).sum()), rng)
        beta = np.clip(emitter_momentum / emitter_p4[:, 3], 1e-6, 1.0 - 1e-12)
        beta[~has_emitter] = 1e-6
        t = (1.0 - beta) * ((1.0 + beta) / (1.0 - beta)) ** rng.random(num)
        cos_theta = np.clip((1.0 - t) / beta, -1.0, 1.0)
        direction = _rotate_about(axis, cos_theta, rng.uniform(0.0, 2.0 * np.pi, num))

        # photon and recoil back to back in the parent frame, then everything into the lab
        photon_rest = np.zeros((num, 1, 4))
        photon_rest[:, 0, :3] = energy[:, None] * direction
        photon_rest[:, 0, 3] = energy
        recoil_beta = -energy[:, None] * direction / (parent_mass - energy)[:, None]
        others_rest = boost(rest, recoil_beta)
        p4[others] = boost_to_lab(others_rest, p4[parents])
        p4[photons] = boost_to_lab(photon_rest, p4[parents])[:, 0]


def _closed_decays(tree: TreeIndex, props: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each particle's smallest reachable mass and whether its decay is closed even at that mass."""
    nominal, max_dm = props[:, 0], props[:, 2]
    resonant = _resonant(tree, props)
    low_edge = np.where(resonant, nominal - max_dm, nominal)
    high_edge = np.where(resonant, nominal + max_dm, nominal)
    minimum = low_edge.copy()
    for level in range(tree.max_depth - 1, 0, -1):
        at_level = np.flatnonzero((tree.depth == level) & (tree.num_children > 1))
        daughter_sum = tree.children_mass_sum(minimum, level=level + 1)[at_level]
        minimum[at_level] = np.maximum(low_edge[at_level], daughter_sum + MASS_MARGIN)
    too_heavy = (tree.children_mass_sum(minimum) >= high_edge) & (tree.num_children > 1)
    return minimum, too_heavy


def _resonant(tree: TreeIndex, props: np.ndarray) -> np.ndarray:
    """Return which particles take a Breit-Wigner mass: decaying, not the root, with a width and a cut-off."""
    return (props[:, 1] > 0) & (props[:, 2] > 0) & (tree.num_children > 0) & (tree.mother >= 0)


def _rotate_about(axis: np.ndarray, cos_theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Return unit vectors at polar angle ``theta`` and azimuth ``phi`` around ``axis``, shape ``(num, 3)``."""
    helper = np.where(np.abs(axis[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(axis, e1)
    sin_theta = np.sqrt(np.maximum(1.0 - cos_theta * cos_theta, 0.0))
    return (
        cos_theta[:, None] * axis
        + (sin_theta * np.cos(phi))[:, None] * e1
        + (sin_theta * np.sin(phi))[:, None] * e2
    )


def _dilepton_rows(signatures: np.ndarray) -> np.ndarray:
    """True for signature rows ``(J/psi, l, l-bar)`` in either order."""
    if signatures.shape[1] != 3:
        return np.zeros(signatures.shape[0], dtype=bool)
    parent, first, second = signatures[:, 0], signatures[:, 1], signatures[:, 2]
    return (parent == JPSI_PDG) & np.isin(np.abs(first), list(LEPTON_PDG)) & (first == -second)


def _dilepton_angular_weight(p4: np.ndarray) -> np.ndarray:
    """Return ``(1 + cos^2 theta) / 2`` of the first lepton about the beam (z) axis."""
    cos_theta = p4[:, 0, 2] / np.maximum(np.linalg.norm(p4[:, 0, :3], axis=1), 1e-12)
    return 0.5 * (1.0 + cos_theta * cos_theta)


def _masked_weight(weight_fn: Callable[[np.ndarray], np.ndarray], mask: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Wrap ``weight_fn`` so that it weights the decays selected by ``mask`` and gives 1 elsewhere."""

    def weight(p4: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(mask[rows], weight_fn(p4), 1.0)

    return weight
