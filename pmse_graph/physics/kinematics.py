"""Eps-clamped relativistic kinematics for single particles and particle pairs.

Every function accepts numpy arrays or torch tensors and returns the same kind.
Momenta are in GeV/c, energies and masses in GeV, with the last axis holding the
components in the order ``(px, py, pz)`` or ``(px, py, pz, E)``. All outputs
stay finite for zero momenta and collinear pairs: logarithms and square roots
are taken of values clamped at ``EPS`` or at zero.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

EPS = 1e-8
"""Floor (GeV^2, GeV or dimensionless) applied before every log, sqrt or division."""


def _clamp_min(x: ArrayT, low: float) -> ArrayT:
    if isinstance(x, torch.Tensor):
        return x.clamp_min(low)
    return np.maximum(x, low)


def _clamp(x: ArrayT, low: float, high: float) -> ArrayT:
    if isinstance(x, torch.Tensor):
        return x.clamp(low, high)
    return np.clip(x, low, high)


def _sqrt(x: ArrayT) -> ArrayT:
    return torch.sqrt(x) if isinstance(x, torch.Tensor) else np.sqrt(x)


def _log(x: ArrayT) -> ArrayT:
    return torch.log(x) if isinstance(x, torch.Tensor) else np.log(x)


def _minimum(a: ArrayT, b: ArrayT) -> ArrayT:
    return torch.minimum(a, b) if isinstance(a, torch.Tensor) else np.minimum(a, b)


def _dot(a: ArrayT, b: ArrayT) -> ArrayT:
    """Return the dot product over the last axis; einsum avoids numpy's slow reduction over a length-3 axis."""
    if isinstance(a, torch.Tensor):
        return (a * b).sum(-1)
    return np.einsum("...i,...i->...", a, b)


def momentum_magnitude(p3: ArrayT) -> ArrayT:
    """Return |p| for ``p3`` of shape ``(..., 3)``; shape ``(...)``."""
    return _sqrt(_dot(p3, p3))


def energy(p3: ArrayT, mass: ArrayT | float) -> ArrayT:
    """Return E = sqrt(|p|^2 + m^2) for ``p3`` of shape ``(..., 3)`` and a broadcastable mass."""
    return _sqrt(_dot(p3, p3) + mass * mass)


def invariant_mass_squared(p4: ArrayT) -> ArrayT:
    """Return m^2 = E^2 - |p|^2 for ``p4`` of shape ``(..., 4)`` ordered (px, py, pz, E).

    The result is clamped at zero, so rounding never gives a negative mass squared.
    """
    m2 = p4[..., 3] * p4[..., 3] - (p4[..., :3] * p4[..., :3]).sum(-1)
    return _clamp_min(m2, 0.0)


def invariant_mass(p4: ArrayT) -> ArrayT:
    """Return the invariant mass (GeV) for ``p4`` of shape ``(..., 4)``."""
    return _sqrt(invariant_mass_squared(p4))


def opening_angle_cos_sin(p3_i: ArrayT, p3_j: ArrayT) -> tuple[ArrayT, ArrayT]:
    """Return (cos, sin) of the angle between two momenta, each of shape ``(..., 3)``.

    A zero momentum has no direction; such a pair gets cos = 1 and sin = 0, the
    values of a collinear pair, rather than NaN.
    """
    return _cos_sin(_dot(p3_i, p3_j), momentum_magnitude(p3_i) * momentum_magnitude(p3_j))


def _cos_sin(dot: ArrayT, norm_product: ArrayT) -> tuple[ArrayT, ArrayT]:
    """Return (cos, sin) from p_i . p_j and |p_i| |p_j|, with cos = 1 where a momentum is zero."""
    cos = _clamp(dot / _clamp_min(norm_product, EPS), -1.0, 1.0)
    zero = norm_product < EPS
    if isinstance(cos, torch.Tensor):
        cos = torch.where(zero, torch.ones_like(cos), cos)
    else:
        cos = np.where(zero, 1.0, cos)
    sin = _sqrt(_clamp_min(1.0 - cos * cos, 0.0))
    return cos, sin


def log_kt(p3_i: ArrayT, p3_j: ArrayT) -> ArrayT:
    """Return log(min(|p_i|, |p_j|) * sin(theta_ij)), clamped at log(EPS)."""
    _, sin = opening_angle_cos_sin(p3_i, p3_j)
    softer = _minimum(momentum_magnitude(p3_i), momentum_magnitude(p3_j))
    return _log(_clamp_min(softer * sin, EPS))


def log_momentum_fraction(p3_i: ArrayT, p3_j: ArrayT) -> ArrayT:
    """Return log z with z = min(|p_i|, |p_j|) / (|p_i| + |p_j|), clamped at log(EPS)."""
    a, b = momentum_magnitude(p3_i), momentum_magnitude(p3_j)
    z = _minimum(a, b) / _clamp_min(a + b, EPS)
    return _log(_clamp_min(z, EPS))


def pair_features(p3_i: ArrayT, p3_j: ArrayT, mass_i: ArrayT, mass_j: ArrayT, *,
                  norm_i: ArrayT | None = None, norm_j: ArrayT | None = None) -> ArrayT:
    """Return the momentum-based pair features for every pair.

    Args:
        p3_i: momenta of the first particles, shape ``(P, 3)``, GeV/c.
        p3_j: momenta of the second particles, shape ``(P, 3)``, GeV/c.
        mass_i: mass hypotheses of the first particles, shape ``(P,)``, GeV.
        mass_j: mass hypotheses of the second particles, shape ``(P,)``, GeV.
        norm_i: ``|p3_i|`` when the caller has it, shape ``(P,)``. Graph builders compute it
            once per particle and gather it per pair, which gives the same numbers faster.
        norm_j: ``|p3_j|`` likewise.

    Returns:
        Shape ``(P, 5)``: log(m_ij^2), cos(theta_ij), sin(theta_ij), log kT, log z,
        with m_ij^2 clamped at ``EPS`` GeV^2 before the log.
    """
    # each magnitude and dot product once: these reductions dominate the cost on large edge sets
    a = momentum_magnitude(p3_i) if norm_i is None else norm_i
    b = momentum_magnitude(p3_j) if norm_j is None else norm_j
    e_i, e_j = _sqrt(a * a + mass_i * mass_i), _sqrt(b * b + mass_j * mass_j)
    p3 = p3_i + p3_j
    m2 = (e_i + e_j) ** 2 - _dot(p3, p3)
    log_m2 = _log(_clamp_min(m2, EPS))
    cos, sin = _cos_sin(_dot(p3_i, p3_j), a * b)
    softer = _minimum(a, b)
    log_kt_ij = _log(_clamp_min(softer * sin, EPS))
    log_z = _log(_clamp_min(softer / _clamp_min(a + b, EPS), EPS))
    columns = [log_m2, cos, sin, log_kt_ij, log_z]
    if isinstance(p3_i, torch.Tensor):
        return torch.stack(columns, dim=-1)
    return np.stack(columns, axis=-1)
