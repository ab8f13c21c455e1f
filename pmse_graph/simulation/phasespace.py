"""Vectorised n-body phase space: Raubold-Lynch (GENBOD) weights and unweighting.

A decay of a parent of mass ``M`` into ``k`` daughters of masses ``m_1 .. m_k`` is built in
the parent rest frame by the Raubold-Lynch recursion (F. James, "Monte Carlo phase space",
CERN 68-15, the method of CERNLIB's GENBOD and ROOT's ``TGenPhaseSpace``): ``k - 2`` sorted
uniform numbers give the intermediate masses ``M_2 < .. < M_{k-1}``, each subsystem
``M_{i+1}`` splits into ``M_i`` and daughter ``i + 1`` back to back along an isotropic
direction, and the event carries the weight ``prod_i p*(M_{i+1}; M_i, m_{i+1})``.
Accepting an event with probability ``weight / max_weight`` turns the weighted sample into
events distributed uniformly in Lorentz-invariant phase space.

Every function works on many decays at once: masses are arrays of shape ``(num_decays,)``
and ``(num_decays, k)``, four-momenta have the last axis ordered ``(px, py, pz, E)`` in GeV.
"""

from __future__ import annotations

import numpy as np

from pmse_graph.errors import DataError


def two_body_momentum(parent_mass: np.ndarray, mass_1: np.ndarray, mass_2: np.ndarray) -> np.ndarray:
    """Return the daughter momentum of a two-body decay in the parent rest frame, in GeV/c.

    Below threshold the result is 0 instead of NaN: callers check thresholds themselves.
    """
    parent_mass = np.asarray(parent_mass, dtype=np.float64)
    mass_sum = mass_1 + mass_2
    mass_diff = mass_1 - mass_2
    product = (parent_mass * parent_mass - mass_sum * mass_sum) * (parent_mass * parent_mass - mass_diff * mass_diff)
    return np.sqrt(np.maximum(product, 0.0)) / (2.0 * np.maximum(parent_mass, 1e-12))


def isotropic_directions(num: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``num`` unit vectors uniform on the sphere, shape ``(num, 3)``."""
    cos_theta = rng.uniform(-1.0, 1.0, num)
    phi = rng.uniform(0.0, 2.0 * np.pi, num)
    sin_theta = np.sqrt(1.0 - cos_theta * cos_theta)
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=-1)


def boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Boost four-momenta by the velocity ``beta``.

    Shapes:
        p4: ``(num, j, 4)`` ordered (px, py, pz, E); beta: ``(num, 3)`` with ``|beta| < 1``.
        Returns ``(num, j, 4)``.
    """
    beta_sq = np.einsum("nc,nc->n", beta, beta)
    gamma = 1.0 / np.sqrt(1.0 - beta_sq)
    # (gamma - 1) / beta^2 written so that it stays finite at beta = 0
    factor = gamma * gamma / (gamma + 1.0)
    beta_dot_p = np.einsum("nc,njc->nj", beta, p4[..., :3])
    energy = p4[..., 3]
    out = np.empty_like(p4)
    out[..., :3] = p4[..., :3] + beta[:, None, :] * (factor[:, None] * beta_dot_p + gamma[:, None] * energy)[..., None]
    out[..., 3] = gamma[:, None] * (energy + beta_dot_p)
    return out


def boost_to_lab(p4_rest: np.ndarray, parent_p4: np.ndarray) -> np.ndarray:
    """Boost daughters from the parent rest frame into the frame where the parent has ``parent_p4``.

    Shapes:
        p4_rest: ``(num, k, 4)``; parent_p4: ``(num, 4)``. Returns ``(num, k, 4)``.
    """
    beta = parent_p4[:, :3] / parent_p4[:, 3:4]
    return boost(p4_rest, beta)


def max_weight_bound(parent_mass: np.ndarray, daughter_masses: np.ndarray) -> np.ndarray:
    """Return the GENBOD upper bound of the Raubold-Lynch weight for each decay.

    Each factor ``p*(M_{i+1}; M_i, m_{i+1})`` is bounded by its value with all the kinetic
    energy given to that step, so the product of those values bounds the weight. The bound
    is loose for many daughters; :class:`PhaseSpaceSampler` tightens it by a factor per mass
    configuration. Daughters are taken heaviest first, as in :func:`generate_weighted`.

    Shapes:
        parent_mass: ``(num,)``; daughter_masses: ``(num, k)``. Returns ``(num,)``.
    """
    num_daughters = daughter_masses.shape[1]
    daughter_masses = -np.sort(-daughter_masses, axis=1)
    kinetic = parent_mass - daughter_masses.sum(axis=1)
    cumulative = np.cumsum(daughter_masses, axis=1)
    bound = np.ones_like(parent_mass, dtype=np.float64)
    for i in range(1, num_daughters):
        bound = bound * two_body_momentum(cumulative[:, i] + kinetic, cumulative[:, i - 1], daughter_masses[:, i])
    return bound


def generate_weighted(
    *,
    parent_mass: np.ndarray,
    daughter_masses: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate weighted n-body decays in the parent rest frame.

    Args:
        parent_mass: parent masses in GeV, shape ``(num,)``.
        daughter_masses: daughter masses in GeV, shape ``(num, k)`` with ``k >= 2``.
        rng: random generator.

    Returns:
        The daughters' four-momenta, shape ``(num, k, 4)``, and the Raubold-Lynch weights,
        shape ``(num,)``. Two-body decays all have the weight ``p*``.

    Raises:
        DataError: when a decay is below threshold or has fewer than two daughters.
    """
    num, num_daughters = daughter_masses.shape
    if num_daughters < 2:
        raise DataError(f"Phase space needs at least two daughters (got {num_daughters})")
    kinetic = parent_mass - daughter_masses.sum(axis=1)
    if num and kinetic.min() < 0.0:
        worst = int(np.argmin(kinetic))
        raise DataError(
            f"Decay below threshold: parent mass {parent_mass[worst]:.6f} GeV < daughter mass sum "
            f"{daughter_masses[worst].sum():.6f} GeV; check the masses before generating"
        )

    # heaviest daughter first: phase space is symmetric under reordering, and in this order the
    # ratio of the weight to max_weight_bound varies least between mass configurations
    order = np.argsort(-daughter_masses, axis=1, kind="stable")
    daughter_masses = np.take_along_axis(daughter_masses, order, axis=1)

    # intermediate masses M_1 = m_1 < M_2 < ... < M_k = M from sorted uniform numbers
    cumulative = np.cumsum(daughter_masses, axis=1)
    fractions = np.zeros((num, num_daughters))
    if num_daughters > 2:
        fractions[:, 1:-1] = np.sort(rng.random((num, num_daughters - 2)), axis=1)
    fractions[:, -1] = 1.0
    invariant = cumulative + fractions * kinetic[:, None]

    # momenta of each splitting M_{i+1} -> M_i + m_{i+1} in the frame of M_{i+1}
    split_momentum = two_body_momentum(invariant[:, 1:], invariant[:, :-1], daughter_masses[:, 1:])
    weight = split_momentum.prod(axis=1)

    # first pair back to back, then each further daughter recoils against the subsystem
    p4 = np.zeros((num, num_daughters, 4))
    direction = isotropic_directions(num, rng)
    momentum = split_momentum[:, 0, None] * direction
    p4[:, 0, :3] = momentum
    p4[:, 1, :3] = -momentum
    p4[:, 0, 3] = np.sqrt(split_momentum[:, 0] ** 2 + daughter_masses[:, 0] ** 2)
    p4[:, 1, 3] = np.sqrt(split_momentum[:, 0] ** 2 + daughter_masses[:, 1] ** 2)
    for i in range(2, num_daughters):
        direction = isotropic_directions(num, rng)
        momentum = split_momentum[:, i - 1]
        subsystem_energy = np.sqrt(momentum**2 + invariant[:, i - 1] ** 2)
        beta = direction * (momentum / subsystem_energy)[:, None]
        p4[:, :i] = boost(p4[:, :i], beta)
        p4[:, i, :3] = -momentum[:, None] * direction
        p4[:, i, 3] = np.sqrt(momentum**2 + daughter_masses[:, i] ** 2)

    # back to the caller's daughter order
    unsorted = np.empty_like(p4)
    np.put_along_axis(unsorted, order[:, :, None], p4, axis=1)
    return unsorted, weight


class PhaseSpaceSampler:
    """Unweighted n-body phase space by accept-reject against a per-decay maximum weight.

    The bound of each decay is :func:`max_weight_bound` times a factor ``c <= 1``. The
    analytic bound alone (``c = 1``) is always valid, but its acceptance falls steeply with the
    number of daughters: below 0.1% for seven pions from a J/psi (``test_phasespace.py``). Decays with ``min_tuned_daughters`` or more
    daughters, or whose mass configuration is met ``min_tuned_decays`` times in one call, get
    ``c`` from a trial: the largest ratio ``weight / bound`` in ``trial_size`` decays, times
    ``safety``. A mass configuration is the parent and the sorted daughter masses rounded to
    20 MeV, so charge states share one trial. The trial draws from its own random stream
    seeded by the configuration, so factors do not depend on the order of processing. A
    weight above a tuned bound raises that decay's bound for its next rounds and is counted
    in :attr:`num_bound_violations`.

    Args:
        trial_size: decays in one trial (default 1000).
        safety: factor on the largest ratio seen in the trial (default 1.4).
        min_tuned_daughters: daughters from which a configuration is always tuned (default 4).
        min_tuned_decays: decays of one configuration in one call from which it is tuned (default 500).
        max_rounds: accept-reject rounds before giving up (default 10000).
    """

    def __init__(
        self,
        *,
        trial_size: int = 1000,
        safety: float = 1.4,
        min_tuned_daughters: int = 4,
        min_tuned_decays: int = 500,
        max_rounds: int = 10000,
    ) -> None:
        self.trial_size = trial_size
        self.safety = safety
        self.min_tuned_daughters = min_tuned_daughters
        self.min_tuned_decays = min_tuned_decays
        self.max_rounds = max_rounds
        self.factors: dict[tuple[int, ...], float] = {}
        self.num_bound_violations = 0
        self.num_trials = 0
        self.num_accepted = 0

    def factors_for(self, *, parent_mass: np.ndarray, daughter_masses: np.ndarray) -> np.ndarray:
        """Return the bound factor of each decay, running trials for new mass configurations.

        Pass nominal masses, not Breit-Wigner draws, so that each configuration gets one key.

        Shapes:
            parent_mass: ``(num,)``; daughter_masses: ``(num, k)``. Returns ``(num,)``.
        """
        num, num_daughters = daughter_masses.shape
        if num_daughters == 2 or num == 0:
            return np.ones(num)
        keys = np.concatenate([parent_mass[:, None], -np.sort(-daughter_masses, axis=1)], axis=1)
        keys = np.rint(keys * 50.0).astype(np.int64)
        unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        occurrences = np.bincount(inverse, minlength=unique.shape[0])
        factors = np.ones(unique.shape[0])
        for row, key in enumerate(unique):
            key = tuple(int(value) for value in key)
            if key in self.factors:
                factors[row] = self.factors[key]
            elif num_daughters >= self.min_tuned_daughters or occurrences[row] >= self.min_tuned_decays:
                decay = first[row]
                factors[row] = self._trial(key, float(parent_mass[decay]), daughter_masses[decay])
        return factors[inverse]

    def _trial(self, key: tuple[int, ...], parent_mass: float, daughter_masses: np.ndarray) -> float:
        if parent_mass - daughter_masses.sum() <= 1e-6:
            # only Breit-Wigner tails open this decay, so the nominal masses cannot be tried
            self.factors[key] = 1.0
            return 1.0
        trial_rng = np.random.default_rng(np.random.SeedSequence(list(key)))
        parents = np.full(self.trial_size, parent_mass)
        daughters = np.broadcast_to(daughter_masses, (self.trial_size, daughter_masses.shape[0]))
        _, weight = generate_weighted(parent_mass=parents, daughter_masses=daughters, rng=trial_rng)
        ratio = weight / np.maximum(max_weight_bound(parents, daughters), 1e-300)
        self.factors[key] = min(1.0, float(ratio.max()) * self.safety)
        return self.factors[key]

    def generate(
        self,
        *,
        parent_mass: np.ndarray,
        daughter_masses: np.ndarray,
        rng: np.random.Generator,
        factor: np.ndarray | float | None = None,
        angular_weight=None,
    ) -> np.ndarray:
        """Generate unweighted decays in the parent rest frame.

        Args:
            parent_mass: shape ``(num,)`` in GeV.
            daughter_masses: shape ``(num, k)`` in GeV.
            factor: bound factor per decay, shape ``(num,)`` or a scalar; None (default)
                takes :meth:`factors_for`.
            rng: random generator.
            angular_weight: optional function ``(p4, rows) -> weight`` for angular distributions:
                ``p4`` contains rest-frame momenta ``(num_pending, k, 4)`` of the decays ``rows``
                (indices into the inputs), the weight lies in ``[0, 1]``, shape ``(num_pending,)``.

        Returns:
            Daughter four-momenta in the parent rest frame, shape ``(num, k, 4)``.
        """
        num, num_daughters = daughter_masses.shape
        if factor is None:
            factor = self.factors_for(parent_mass=parent_mass, daughter_masses=daughter_masses)
        factor = np.broadcast_to(np.asarray(factor, dtype=np.float64), (num,))
        bound = max_weight_bound(parent_mass, daughter_masses) * factor
        out = np.empty((num, num_daughters, 4))
        pending = np.arange(num)
        for _ in range(self.max_rounds):
            if pending.size == 0:
                return out
            p4, weight = generate_weighted(parent_mass=parent_mass[pending], daughter_masses=daughter_masses[pending], rng=rng)
            ratio = weight / np.maximum(bound[pending], 1e-300)
            too_high = ratio > 1.0
            if too_high.any():
                # NOTE: events accepted before the bound grew were slightly under-sampled where the weight is highest.
                self.num_bound_violations += int(too_high.sum())
                bound[pending[too_high]] *= ratio[too_high]
            if angular_weight is not None:
                ratio = ratio * angular_weight(p4, pending)
            accept = rng.random(pending.size) < ratio
            self.num_trials += pending.size
            self.num_accepted += int(accept.sum())
            out[pending[accept]] = p4[accept]
            pending = pending[~accept]
        raise DataError(
            f"Phase-space accept-reject did not converge for {pending.size} decays with {num_daughters} daughters "
            f"after {self.max_rounds} rounds; the decays sit too close to threshold"
        )

    @property
    def efficiency(self) -> float:
        """Fraction of generated decays accepted so far (1.0 before any decay)."""
        return self.num_accepted / self.num_trials if self.num_trials else 1.0
