"""Kinematic fit with Lagrange multipliers, vectorised over a batch of hypotheses.

Each particle is measured as ``(p, theta, phi)``: momentum magnitude (the shower energy
for a photon), polar and azimuthal angle, with independent Gaussian errors. The fit
minimises ``chi2 = (a0 - a)^T V^-1 (a0 - a)`` subject to constraints ``H(a) = 0``:
four-momentum conservation against a fixed total (4C) and optionally the invariant mass
of subsets of particles (one more constraint each, e.g. M(gamma gamma) = m(pi0) for 5C).

The constraints are linearised around the current estimate ``a_A`` and the linear problem
is solved in closed form. The step then repeats from the new estimate:

    D = dH/da (a_A),  d = H(a_A),  r = D (a0 - a_A) + d
    V_D = (D V D^T)^-1,  lambda = V_D r,  a = a0 - V D^T lambda,  chi2 = lambda^T r

The fitted covariance is ``V - V D^T V_D D V``, which gives the pulls
``(a0 - a) / sqrt(V - V_fit)`` on the diagonal. A hypothesis whose constraints cannot be
met (the iteration does not converge, leaves the physical region or gives non-finite
numbers) comes back with ``converged = False`` and ``chi2 = inf`` instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NUM_PARAMETERS = 3
"""Measured parameters per particle: (p, theta, phi)."""


@dataclass(frozen=True)
class MassConstraint:
    """Invariant mass of a subset of the fitted particles.

    Attributes:
        particles: indices of the particles (along the particle axis) that form the mass.
        mass: the mass they must reach, GeV.
    """

    particles: tuple[int, ...]
    mass: float


@dataclass
class FitResult:
    """Result of :func:`kinematic_fit` for a batch of B hypotheses of N particles.

    Attributes:
        parameters: fitted ``(p, theta, phi)``, shape ``(B, N, 3)``.
        p4: fitted four-momenta ``(px, py, pz, E)`` in GeV, shape ``(B, N, 4)``.
        chi2: fit chi2, ``inf`` where the fit failed, shape ``(B,)``.
        converged: True where the fit converged inside the physical region, shape ``(B,)``.
        pulls: ``(a0 - a) / sqrt(sigma0^2 - sigma_fit^2)`` per parameter, NaN where the fit
            failed, shape ``(B, N, 3)``.
        iterations: linearisation steps taken, shape ``(B,)``.
        ndf: number of constraints, the chi2's degrees of freedom.
    """

    parameters: np.ndarray
    p4: np.ndarray
    chi2: np.ndarray
    converged: np.ndarray
    pulls: np.ndarray
    iterations: np.ndarray
    ndf: int


def four_momenta(parameters: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Return ``(px, py, pz, E)`` of particles given as ``(p, theta, phi)``.

    Shapes:
        parameters: (..., N, 3); mass: broadcastable to (..., N); returns (..., N, 4).
    """
    p, theta, phi = parameters[..., 0], parameters[..., 1], parameters[..., 2]
    sin_theta = np.sin(theta)
    energy = np.sqrt(p * p + mass * mass)
    return np.stack([p * sin_theta * np.cos(phi), p * sin_theta * np.sin(phi), p * np.cos(theta), energy], axis=-1)


def _four_momentum_jacobian(parameters: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Return d(px, py, pz, E) / d(p, theta, phi) per particle, shape ``(B, N, 4, 3)``."""
    p, theta, phi = parameters[..., 0], parameters[..., 1], parameters[..., 2]
    sin_t, cos_t, sin_p, cos_p = np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)
    energy = np.maximum(np.sqrt(p * p + mass * mass), 1e-12)
    zero = np.zeros_like(p)
    rows = [
        [sin_t * cos_p, p * cos_t * cos_p, -p * sin_t * sin_p],
        [sin_t * sin_p, p * cos_t * sin_p, p * sin_t * cos_p],
        [cos_t, -p * sin_t, zero],
        [p / energy, zero, zero],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _constraints(
    parameters: np.ndarray, mass: np.ndarray, total: np.ndarray, mass_constraints: Sequence[MassConstraint]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the constraint values ``H`` (B, C) and their Jacobian ``D`` (B, C, 3N)."""
    num_batch, num_particles, _ = parameters.shape
    p4 = four_momenta(parameters, mass)
    jacobian = _four_momentum_jacobian(parameters, mass)  # (B, N, 4, 3)

    # four-momentum conservation: sum of p4 minus the total
    values = [p4.sum(axis=1) - total]
    derivatives = [jacobian.transpose(0, 2, 1, 3).reshape(num_batch, 4, num_particles * NUM_PARAMETERS)]

    # each mass constraint: M^2 - m^2 = E_S^2 - |p_S|^2 - m^2
    for constraint in mass_constraints:
        index = list(constraint.particles)
        subset = p4[:, index].sum(axis=1)  # (B, 4)
        values.append((subset[:, 3] ** 2 - (subset[:, :3] ** 2).sum(axis=1) - constraint.mass**2)[:, None])
        metric = np.concatenate([-2.0 * subset[:, :3], 2.0 * subset[:, 3:]], axis=1)  # (B, 4)
        row = np.zeros((num_batch, num_particles, NUM_PARAMETERS))
        row[:, index] = np.einsum("bk,bnkj->bnj", metric, jacobian[:, index])
        derivatives.append(row.reshape(num_batch, 1, num_particles * NUM_PARAMETERS))
    return np.concatenate(values, axis=1), np.concatenate(derivatives, axis=1)


def kinematic_fit(
    *,
    measured: np.ndarray,
    sigma: np.ndarray,
    mass: np.ndarray,
    total: np.ndarray,
    mass_constraints: Sequence[MassConstraint] = (),
    max_iterations: int = 20,
    chi2_tolerance: float = 1e-3,
    constraint_tolerance: float = 1e-5,
) -> FitResult:
    """Fit B hypotheses of N particles to a total four-momentum and optional mass constraints.

    Args:
        measured: measured ``(p, theta, phi)`` per particle, GeV/c and rad.
        sigma: their standard deviations, same shape; all must be positive.
        mass: mass hypothesis per particle in GeV (0 for photons).
        total: the four-momentum ``(px, py, pz, E)`` the particles must add up to, GeV.
        mass_constraints: extra invariant-mass constraints, one degree of freedom each.
        max_iterations: linearisation steps before a fit counts as not converged (default 20).
        chi2_tolerance: convergence when chi2 changes by less than this (default 1e-3).
        constraint_tolerance: and every constraint is met to this (GeV or GeV^2, default 1e-5).

    Shapes:
        measured, sigma: (B, N, 3); mass: (N,) or (B, N); total: (4,) or (B, 4).

    Raises:
        ValueError: for inconsistent shapes or a non-positive sigma.
    """
    measured = np.asarray(measured, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if measured.ndim != 3 or measured.shape[2] != NUM_PARAMETERS or sigma.shape != measured.shape:
        raise ValueError(f"Expected measured and sigma of shape (B, N, 3) (got {measured.shape} and {sigma.shape})")
    num_batch, num_particles, _ = measured.shape
    if num_batch and not np.all(sigma > 0.0):
        raise ValueError("Expected every sigma > 0 (got zero, negative or NaN values)")
    for constraint in mass_constraints:
        if not constraint.particles or max(constraint.particles) >= num_particles or min(constraint.particles) < 0:
            raise ValueError(f"Mass constraint on particles {constraint.particles} is out of range for N = {num_particles}")
    mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), (num_batch, num_particles))
    total = np.broadcast_to(np.asarray(total, dtype=np.float64), (num_batch, 4))
    num_constraints = 4 + len(mass_constraints)
    size = num_particles * NUM_PARAMETERS

    a0 = measured.reshape(num_batch, size)
    variance = sigma.reshape(num_batch, size) ** 2
    current = a0.copy()
    chi2 = np.full(num_batch, np.inf)
    converged = np.zeros(num_batch, dtype=bool)
    failed = np.zeros(num_batch, dtype=bool)
    iterations = np.zeros(num_batch, dtype=np.int64)
    reduction = np.zeros((num_batch, size))
    for _ in range(max_iterations):
        active = ~(converged | failed)
        if not active.any():
            break
        rows = np.flatnonzero(active)
        values, jacobian = _constraints(current[rows].reshape(-1, num_particles, 3), mass[rows], total[rows], mass_constraints)

        # one linearised step: r = D (a0 - a_A) + d, lambda = (D V D^T)^-1 r
        residual = np.einsum("bcj,bj->bc", jacobian, a0[rows] - current[rows]) + values
        v_jt = variance[rows][:, :, None] * jacobian.transpose(0, 2, 1)  # (b, size, C)
        # pinv keeps a singular D V D^T (an unreachable constraint) from stopping the batch
        weight = np.linalg.pinv(jacobian @ v_jt, hermitian=True)  # (b, C, C)
        multipliers = np.einsum("bcd,bd->bc", weight, residual)
        updated = a0[rows] - np.einsum("bjc,bc->bj", v_jt, multipliers)
        new_chi2 = np.einsum("bc,bc->b", multipliers, residual)

        # a step that leaves the physical region or the reals ends the fit as failed
        p_fit = updated.reshape(-1, num_particles, 3)[:, :, 0]
        theta_fit = updated.reshape(-1, num_particles, 3)[:, :, 1]
        bad = ~np.isfinite(updated).all(axis=1) | ~np.isfinite(new_chi2) | (p_fit <= 0.0).any(axis=1)
        bad |= ((theta_fit < 0.0) | (theta_fit > np.pi)).any(axis=1)
        failed[rows[bad]] = True
        good = rows[~bad]
        iterations[rows] += 1
        new_values, _ = _constraints(updated[~bad].reshape(-1, num_particles, 3), mass[good], total[good], mass_constraints)
        settled = (np.abs(new_chi2[~bad] - chi2[good]) < chi2_tolerance) & (np.abs(new_values).max(axis=1) < constraint_tolerance)
        current[good] = updated[~bad]
        chi2[good] = new_chi2[~bad]
        reduction[good] = np.einsum("bjc,bcd,bjd->bj", v_jt[~bad], weight[~bad], v_jt[~bad])
        converged[good[settled]] = True

    chi2 = np.where(converged, chi2, np.inf)
    spread = np.sqrt(np.maximum(reduction, 1e-300))
    pulls = np.where(converged[:, None], (a0 - current) / spread, np.nan)
    parameters = current.reshape(num_batch, num_particles, 3)
    return FitResult(
        parameters=parameters,
        p4=four_momenta(parameters, mass),
        chi2=chi2,
        converged=converged,
        pulls=pulls.reshape(num_batch, num_particles, 3),
        iterations=iterations,
        ndf=num_constraints,
    )


def kinematic_fit_batched(
    *,
    measured: np.ndarray,
    sigma: np.ndarray,
    mass: np.ndarray,
    total: np.ndarray,
    mass_constraints: Sequence[MassConstraint] = (),
    batch_size: int = 50_000,
) -> FitResult:
    """Run :func:`kinematic_fit` on slices of ``batch_size`` hypotheses, which bounds memory.

    Arguments and shapes as :func:`kinematic_fit`; ``mass`` and ``total`` may be per hypothesis.
    """
    if batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1 (got {batch_size})")
    num_batch = np.asarray(measured).shape[0]
    mass, total = np.asarray(mass), np.asarray(total)
    parts = []
    for start in range(0, max(num_batch, 1), batch_size):
        rows = slice(start, start + batch_size)
        parts.append(
            kinematic_fit(
                measured=measured[rows],
                sigma=sigma[rows],
                mass=mass[rows] if mass.ndim == 2 else mass,
                total=total[rows] if total.ndim == 2 else total,
                mass_constraints=mass_constraints,
            )
        )
    return FitResult(
        parameters=np.concatenate([part.parameters for part in parts]),
        p4=np.concatenate([part.p4 for part in parts]),
        chi2=np.concatenate([part.chi2 for part in parts]),
        converged=np.concatenate([part.converged for part in parts]),
        pulls=np.concatenate([part.pulls for part in parts]),
        iterations=np.concatenate([part.iterations for part in parts]),
        ndf=parts[0].ndf,
    )
