"""Main drift chamber response: which charged particles become tracks, and their helix parameters.

A charged particle becomes a track when it lies inside the polar-angle
acceptance, has enough transverse momentum not to curl up before crossing
enough layers, is produced inside the inner part of the chamber, and passes a
flat efficiency. The reconstructed momentum and the point of closest approach
to the beam line come from the true helix (:func:`closest_approach_to_beam`),
smeared with the resolutions of :class:`MdcConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.simulation.detector.config import MdcConfig
from pmse_graph.simulation.detector.geometry import EPS, closest_approach_to_beam, row_norm


@dataclass
class MdcTracks:
    """Reconstructed tracks of the charged particles passed to :func:`reconstruct_tracks`.

    Attributes:
        tracked: which input particles became tracks, shape ``(n,)`` bool.
        momentum: momentum at the point of closest approach, shape ``(m, 3)`` GeV/c, m = tracked.sum().
        vz0: z of the point of closest approach, shape ``(m,)`` cm.
        vr0: distance of that point from the beam line, shape ``(m,)`` cm.
    """

    tracked: np.ndarray
    momentum: np.ndarray
    vz0: np.ndarray
    vr0: np.ndarray


def momentum_resolution(*, momentum: np.ndarray, mass: np.ndarray, config: MdcConfig) -> np.ndarray:
    """Return the relative momentum resolution sigma_p / p for momenta ``momentum`` (GeV/c)."""
    beta = momentum / np.sqrt(momentum**2 + mass**2)
    curvature = config.sigma_p_curvature_per_gev * momentum
    scattering = config.sigma_p_scattering / np.maximum(beta, EPS)
    return np.hypot(curvature, scattering)


def reconstruct_tracks(
    *,
    vertex: np.ndarray,
    momentum: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    field_tesla: float,
    config: MdcConfig,
    rng: np.random.Generator,
) -> MdcTracks:
    """Decide which charged particles are tracked and smear their helix parameters.

    Args:
        vertex: production vertices, shape ``(n, 3)`` cm.
        momentum: true momenta at production, shape ``(n, 3)`` GeV/c.
        charge: charges (non-zero), shape ``(n,)``.
        mass: true masses, shape ``(n,)`` GeV.
        field_tesla: solenoid field.
        config: MDC parameters.
        rng: random generator; the draws depend only on its state and the inputs.
    """
    num = momentum.shape[0]
    p = row_norm(momentum)
    pt = np.hypot(momentum[:, 0], momentum[:, 1])
    cos_theta = momentum[:, 2] / np.maximum(p, EPS)
    production_radius = np.hypot(vertex[:, 0], vertex[:, 1])

    # acceptance, curling, production radius and efficiency
    efficient = rng.random(num) < config.efficiency
    tracked = (
        (np.abs(cos_theta) < config.max_abs_cos_theta)
        & (pt > config.min_pt_gev)
        & (production_radius < config.max_production_radius_cm)
        & efficient
    )

    # true helix at the point of closest approach
    poca = closest_approach_to_beam(
        vertex=vertex[tracked], momentum=momentum[tracked], charge=charge[tracked], field_tesla=field_tesla
    )
    m = poca.position.shape[0]
    p_true = p[tracked]

    # momentum magnitude and direction
    sigma_rel = momentum_resolution(momentum=p_true, mass=mass[tracked], config=config)
    p_reco = p_true * np.maximum(1.0 + sigma_rel * rng.standard_normal(m), EPS)
    sigma_angle = 1e-3 * np.hypot(config.sigma_angle_mrad, config.sigma_angle_scattering_mrad_gev / np.maximum(p_true, EPS))
    theta = np.arccos(np.clip(poca.momentum[:, 2] / np.maximum(p_true, EPS), -1.0, 1.0))
    theta = np.clip(theta + sigma_angle * rng.standard_normal(m), 0.0, np.pi)
    phi = np.arctan2(poca.momentum[:, 1], poca.momentum[:, 0]) + sigma_angle * rng.standard_normal(m)
    momentum_reco = np.stack(
        [p_reco * np.sin(theta) * np.cos(phi), p_reco * np.sin(theta) * np.sin(phi), p_reco * np.cos(theta)], axis=1
    )

    # point of closest approach: transverse distance and z
    sigma_rphi = np.hypot(config.sigma_rphi_cm, config.sigma_rphi_scattering_cm_gev / np.maximum(p_true, EPS))
    sigma_z = np.hypot(config.sigma_z_cm, config.sigma_z_scattering_cm_gev / np.maximum(p_true, EPS))
    vr0 = np.abs(np.hypot(poca.position[:, 0], poca.position[:, 1]) + sigma_rphi * rng.standard_normal(m))
    vz0 = poca.position[:, 2] + sigma_z * rng.standard_normal(m)
    return MdcTracks(tracked=tracked, momentum=momentum_reco, vz0=vz0, vr0=vr0)
