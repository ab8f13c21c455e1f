"""Muon counter response: RPC layers between iron plates of the flux return yoke.

A muon inside the coverage reaches the first layer when its momentum exceeds
the threshold set by the material in front (EMC, coil). It then loses a
constant energy per cm of iron, so its range fixes how many layers it crosses. Iron
thicknesses are along the layer normal: a barrel track crosses ``t / sin(theta)``,
an endcap track ``t / |cos(theta)|``. Charged hadrons above a momentum
threshold punch through with a small probability and stop after a few layers
(geometric number, fixed mean). Every crossed layer fires with the layer
efficiency, with ``1 + Poisson(extra_hits_mean)`` strips.

Track-fit variables: ``dof = numHits - 4``, clipped at 0, because the fit is a
straight line with two parameters in each of the two strip views. The chi2 is
drawn from the chi2 distribution with that many degrees of freedom and scaled
up for hadrons, whose hits scatter more. Tracks without hits get no MUC information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.simulation.detector.config import MucConfig
from pmse_graph.simulation.detector.geometry import EPS, row_norm
from pmse_graph.simulation.detector.particles import Category

MUON_MASS = 0.1056584
FIT_PARAMETERS = 4


@dataclass
class MucHits:
    """MUC response of m tracks, each array of shape ``(m,)``.

    Attributes:
        has_hits: True where at least one layer fired.
        depth_cm: iron traversed up to the last fired layer, cm.
        num_layers: layers with hits.
        max_hits_in_layer: most strips fired in one layer.
        num_hits: strips fired in all layers.
        dof: degrees of freedom of the track fit.
        chisq: chi2 of the track fit.
    """

    has_hits: np.ndarray
    depth_cm: np.ndarray
    num_layers: np.ndarray
    max_hits_in_layer: np.ndarray
    num_hits: np.ndarray
    dof: np.ndarray
    chisq: np.ndarray


def respond(
    *, category: np.ndarray, momentum: np.ndarray, config: MucConfig, rng: np.random.Generator
) -> MucHits:
    """Simulate the MUC response of tracks.

    Args:
        category: :class:`Category` per track, shape ``(m,)``.
        momentum: true momenta, shape ``(m, 3)`` GeV/c.
        config: MUC parameters.
        rng: random generator.
    """
    m = momentum.shape[0]
    num_layers_total = len(config.iron_thickness_cm)
    p = row_norm(momentum)
    abs_cos = np.abs(momentum[:, 2]) / np.maximum(p, EPS)
    sin_theta = np.sqrt(np.maximum(1.0 - abs_cos**2, 0.0))
    covered = abs_cos < config.max_abs_cos_theta

    # iron crossed before each layer along the track direction, shape (m, layers)
    barrel = abs_cos < config.barrel_max_abs_cos_theta
    path_factor = np.where(barrel, 1.0 / np.maximum(sin_theta, EPS), 1.0 / np.maximum(abs_cos, EPS))
    cumulative_iron = np.cumsum(np.asarray(config.iron_thickness_cm))[None, :] * path_factor[:, None]

    # muon range beyond the threshold energy
    muon = (category == Category.MUON) & covered & (p > config.muon_min_momentum_gev)
    energy = np.sqrt(p**2 + MUON_MASS**2)
    threshold_energy = np.hypot(config.muon_min_momentum_gev, MUON_MASS)
    muon_range = (energy - threshold_energy) / config.muon_loss_gev_per_cm
    muon_layers = np.maximum(np.sum(cumulative_iron <= muon_range[:, None], axis=1), 1)

    # rare hadron punch-through, a geometric number of layers
    hadron = np.isin(category, (Category.CHARGED_HADRON, Category.PROTON, Category.ANTINUCLEON))
    punch = hadron & covered & (p > config.punch_through_min_momentum_gev)
    punch &= rng.random(m) < config.punch_through_probability
    punch_layers = rng.geometric(1.0 / config.punch_through_mean_layers, size=m)
    reached_layers = np.where(muon, muon_layers, np.where(punch, punch_layers, 0))
    reached_layers = np.minimum(reached_layers, num_layers_total)

    # fired layers and strips per layer, drawn only for tracks that reach the first layer
    reaching = np.flatnonzero(reached_layers > 0)
    k = reaching.shape[0]
    layer_index = np.arange(num_layers_total)[None, :]
    reached = layer_index < reached_layers[reaching, None]
    fired = reached & (rng.random((k, num_layers_total)) < config.layer_efficiency)
    strips = np.where(fired, 1 + rng.poisson(config.extra_hits_mean, size=(k, num_layers_total)), 0)

    num_layers = np.zeros(m, dtype=np.int32)
    num_hits = np.zeros(m, dtype=np.int32)
    max_hits = np.zeros(m, dtype=np.int32)
    depth = np.zeros(m)
    num_layers[reaching] = fired.sum(axis=1)
    num_hits[reaching] = strips.sum(axis=1)
    max_hits[reaching] = strips.max(axis=1, initial=0)
    last_fired = num_layers_total - 1 - np.argmax(fired[:, ::-1], axis=1)
    depth[reaching] = cumulative_iron[reaching, last_fired]
    has_hits = num_layers > 0
    depth = np.where(has_hits, depth, 0.0)

    dof = np.maximum(num_hits - FIT_PARAMETERS, 0).astype(np.int32)
    chisq = rng.chisquare(np.maximum(dof, 1)) * (dof > 0)
    chisq = np.where(hadron, chisq * config.hadron_chisq_scale, chisq)
    return MucHits(
        has_hits=has_hits,
        depth_cm=depth,
        num_layers=num_layers,
        max_hits_in_layer=max_hits,
        num_hits=num_hits,
        dof=dof,
        chisq=chisq,
    )
