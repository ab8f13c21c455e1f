"""Particle identification from MDC dE/dx and TOF: probabilities for e, mu, pi, K and p.

For each track the measured dE/dx (Gaussian around a Bethe-Bloch-like curve of the
true beta*gamma) and, where the track reaches a TOF counter, the measured flight
time are compared with the expectation of each mass hypothesis at the
reconstructed momentum. The Gaussian log-likelihoods plus the log prior of each
hypothesis are normalised into the ``pid_prob_*`` probabilities, and
``pid_prob_type`` is the most probable hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.simulation.detector.config import DedxConfig, PidConfig
from pmse_graph.simulation.detector.geometry import EPS, SPEED_OF_LIGHT_CM_PER_PS, cos_theta, impact_on_cylinder, row_norm

HYPOTHESIS_NAMES = ("e", "mu", "pi", "K", "p")
"""Order of the hypotheses, matching ``pid_prob_type`` values 0-4."""

HYPOTHESIS_MASSES = np.array([0.000510999, 0.1056584, 0.1395704, 0.493677, 0.9382721])
"""PDG masses of e, mu, pi, K and p in GeV."""

MIN_BETA_GAMMA = 0.05


def _raw_ionisation(beta_gamma: np.ndarray, log_scale: float) -> np.ndarray:
    beta_gamma = np.maximum(beta_gamma, MIN_BETA_GAMMA)
    beta_sq = beta_gamma**2 / (1.0 + beta_gamma**2)
    return (np.log(log_scale * beta_gamma**2) - beta_sq) / beta_sq


def expected_dedx(beta_gamma: np.ndarray, config: DedxConfig) -> np.ndarray:
    """Return the expected dE/dx in units of the minimum, with the relativistic rise capped at the plateau.

    The curve is ``(ln(log_scale * (beta gamma)^2) - beta^2) / beta^2`` divided by
    its minimum, which is found on a fixed log grid of beta*gamma. Only the rise
    above the minimum is capped, so slow particles keep their 1/beta^2 growth.
    """
    grid = np.logspace(-1.0, 3.0, 4001)
    grid_values = _raw_ionisation(grid, config.log_scale)
    position = int(np.argmin(grid_values))
    curve = _raw_ionisation(beta_gamma, config.log_scale) / grid_values[position]
    rising = beta_gamma > grid[position]
    return np.where(rising, np.minimum(curve, config.plateau), curve)


@dataclass
class PidResult:
    """Probabilities of the five hypotheses per track.

    Attributes:
        probabilities: shape ``(m, 5)`` in the order of :data:`HYPOTHESIS_NAMES`, rows sum to 1.
        most_probable: argmax of each row, shape ``(m,)`` int32.
        has_tof: True where a TOF time entered the likelihood, shape ``(m,)`` bool.
    """

    probabilities: np.ndarray
    most_probable: np.ndarray
    has_tof: np.ndarray


def identify(
    *,
    vertex: np.ndarray,
    true_momentum: np.ndarray,
    true_mass: np.ndarray,
    charge: np.ndarray,
    reco_momentum: np.ndarray,
    field_tesla: float,
    config: PidConfig,
    rng: np.random.Generator,
) -> PidResult:
    """Simulate dE/dx and TOF measurements of tracks and turn them into hypothesis probabilities.

    Args:
        vertex: production vertices, shape ``(m, 3)`` cm.
        true_momentum: true momenta, shape ``(m, 3)`` GeV/c.
        true_mass: true masses, shape ``(m,)`` GeV.
        charge: charges, shape ``(m,)``.
        reco_momentum: reconstructed momenta, shape ``(m, 3)`` GeV/c.
        field_tesla: solenoid field.
        config: PID parameters.
        rng: random generator.
    """
    m = true_momentum.shape[0]
    p_true = np.maximum(row_norm(true_momentum), EPS)
    p_reco = np.maximum(row_norm(reco_momentum), EPS)
    masses = HYPOTHESIS_MASSES[None, :]

    # dE/dx: measured around the true curve, compared with each hypothesis at the measured momentum
    dedx_true = expected_dedx(p_true / np.maximum(true_mass, EPS), config.dedx)
    dedx_measured = dedx_true * (1.0 + config.dedx.resolution * rng.standard_normal(m))
    dedx_expected = expected_dedx(p_reco[:, None] / masses, config.dedx)
    dedx_sigma = config.dedx.resolution * dedx_expected
    log_likelihood = -0.5 * ((dedx_measured[:, None] - dedx_expected) / dedx_sigma) ** 2 - np.log(dedx_sigma)

    # TOF: the counter the helix reaches decides the resolution
    tof = config.tof
    impact = impact_on_cylinder(
        vertex=vertex,
        momentum=true_momentum,
        charge=charge,
        field_tesla=field_tesla,
        radius_cm=tof.barrel_radius_cm,
        half_length_cm=tof.endcap_z_cm,
    )
    impact_cos = np.abs(cos_theta(impact.position))
    in_barrel = impact.reached & (impact_cos < tof.barrel_max_abs_cos_theta)
    in_endcap = impact.reached & (impact_cos > tof.endcap_min_abs_cos_theta) & (impact_cos < tof.endcap_max_abs_cos_theta)
    has_tof = in_barrel | in_endcap
    sigma_ps = np.where(in_barrel, tof.barrel_resolution_ps, tof.endcap_resolution_ps)

    beta_true = p_true / np.sqrt(p_true**2 + true_mass**2)
    time_measured = impact.path_length / (beta_true * SPEED_OF_LIGHT_CM_PER_PS) + sigma_ps * rng.standard_normal(m)
    beta_expected = p_reco[:, None] / np.sqrt(p_reco[:, None] ** 2 + masses**2)
    time_expected = impact.path_length[:, None] / (beta_expected * SPEED_OF_LIGHT_CM_PER_PS)
    tof_term = -0.5 * ((time_measured[:, None] - time_expected) / sigma_ps[:, None]) ** 2
    log_likelihood = log_likelihood + np.where(has_tof[:, None], tof_term, 0.0)

    # priors, then a numerically safe normalisation
    prior = np.asarray(config.prior.as_tuple(), dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_posterior = log_likelihood + np.log(prior)[None, :]
    log_posterior -= log_posterior.max(axis=1, keepdims=True)
    weights = np.exp(log_posterior)
    probabilities = weights / weights.sum(axis=1, keepdims=True)
    most_probable = np.argmax(probabilities, axis=1).astype(np.int32)
    return PidResult(probabilities=probabilities, most_probable=most_probable, has_tof=has_tof)
