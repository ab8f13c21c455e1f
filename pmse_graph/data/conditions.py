"""The four per-event conditions: charged and neutral counts, before and after selection.

Used when the ntuple does not store the counts. The cuts are BESIII's, with
the values in the schema's ``selection`` block:

* good charged track: |Vz| < 10 cm, Vr < 1 cm and |cos theta| < 0.93;
* good photon: a neutral shower in the barrel (|cos theta| < 0.80, E > 25 MeV) or an
  endcap (0.86 < |cos theta| < 0.92, E > 50 MeV), with EMC time in 0-14 (50 ns units)
  and more than 10 degrees from every charged track's impact point on the EMC.

The impact point comes from :func:`pmse_graph.physics.helix.impact_on_cylinder`,
the function the detector response uses: the helix starts at ``(0, 0, vz0)``
with the track's momentum and charge, in the field and EMC geometry of the
detector configuration that the schema's ``selection.detector`` names. Tracks
that curl up before the EMC take no part in the isolation, as in the detector.
Without ``selection.detector`` the isolation uses the momentum direction.

A schema without vertex features counts every charged track as good, and one
without EMC shower features counts every neutral particle as a good photon.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pmse_graph.data.pairs import ordered_pairs
from pmse_graph.data.schema import Schema
from pmse_graph.errors import ConfigError
from pmse_graph.resources import configs_dir
from pmse_graph.physics.helix import impact_on_cylinder
from pmse_graph.physics.kinematics import EPS


@dataclass(frozen=True)
class EmcGeometry:
    """Solenoid field (T) and EMC front surface (barrel radius, endcap z; cm) of a detector."""

    field_tesla: float
    radius_cm: float
    half_length_cm: float


@lru_cache(maxsize=8)
def emc_geometry(detector: str) -> EmcGeometry:
    """Read the field and EMC geometry from a detector configuration, by name or path.

    Raises:
        ConfigError: the configuration is unknown or invalid.
    """
    from pmse_graph.simulation.detector.config import load_detector_config

    path = Path(detector)
    if not path.suffix:
        path = configs_dir() / "detector" / f"{detector}.yaml"
    if not path.is_file():
        raise ConfigError(f"Detector configuration '{detector}' not found (looked for {path}); "
                          "set the schema's selection.detector to a name in configs/detector or a YAML path")
    config = load_detector_config(path)
    return EmcGeometry(field_tesla=config.solenoid_field_tesla, radius_cm=config.emc.barrel_radius_cm,
                       half_length_cm=config.emc.endcap_z_cm)


def track_directions(p4: np.ndarray, charge: np.ndarray, vz: np.ndarray | None,
                     detector: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the vectors the photon isolation measures angles to, and which tracks take part.

    Args:
        p4: four-momenta of the tracks, shape ``(t, 4)``.
        charge: their charges, shape ``(t,)``.
        vz: z of closest approach (cm), shape ``(t,)``; None places tracks at the origin.
        detector: detector configuration for the EMC impact points; None uses the momentum.

    Returns:
        Vectors from the origin, shape ``(t, 3)`` float64, and a mask of the tracks that
        reach the EMC (all True without a detector), shape ``(t,)``.
    """
    momentum = p4[:, :3].astype(np.float64)
    if detector is None:
        return momentum, np.linalg.norm(momentum, axis=1) > 0
    geometry = emc_geometry(detector)
    vertex = np.zeros_like(momentum)
    if vz is not None:
        vertex[:, 2] = vz
    impact = impact_on_cylinder(vertex=vertex, momentum=momentum, charge=charge.astype(np.float64),
                                field_tesla=geometry.field_tesla, radius_cm=geometry.radius_cm,
                                half_length_cm=geometry.half_length_cm)
    return impact.position, impact.reached & (np.linalg.norm(momentum, axis=1) > 0)


def _event_sum(mask: np.ndarray, event_of_node: np.ndarray, num_events: int) -> np.ndarray:
    return np.bincount(event_of_node[mask], minlength=num_events).astype(np.int64)


def compute_conditions(raw: dict[str, np.ndarray], missing: dict[str, np.ndarray], p4: np.ndarray,
                       has_shower: np.ndarray, offsets: np.ndarray, schema: Schema) -> np.ndarray:
    """Count charged, neutral, good charged and good neutral particles in each event.

    Args:
        raw: feature name -> raw values, shape ``(num_nodes,)``; missing entries contain 0.
        missing: feature name -> missing mask, shape ``(num_nodes,)``.
        p4: four-momenta ``(px, py, pz, E)``, shape ``(num_nodes, 4)``.
        has_shower: True for particles with an EMC shower, shape ``(num_nodes,)``.
        offsets: event offsets, shape ``(num_events + 1,)``.
        schema: the event schema.

    Returns:
        int64 counts, shape ``(num_events, 4)``, columns (charged, neutral, good charged, good neutral).
    """
    spec, cuts = schema.momentum, schema.selection
    num_events = len(offsets) - 1
    num_nodes = len(p4)
    event_of_node = np.repeat(np.arange(num_events), np.diff(offsets))

    charged = np.zeros(num_nodes, dtype=bool)
    if spec.charge is not None:
        charged = (raw[spec.charge] != 0) & ~missing[spec.charge]
    neutral = ~charged

    # good charged tracks: vertex and polar-angle cuts
    good_charged = charged.copy()
    if cuts.vz is not None and cuts.vr is not None:
        momentum = np.maximum(np.linalg.norm(p4[:, :3], axis=1), EPS)
        cos_theta = p4[:, 2] / momentum
        good_charged &= ~missing[cuts.vz] & ~missing[cuts.vr]
        good_charged &= (np.abs(raw[cuts.vz]) < cuts.max_abs_vz) & (raw[cuts.vr] < cuts.max_vr)
        good_charged &= np.abs(cos_theta) < cuts.max_abs_cos_charged

    # good photons: acceptance, energy, time and isolation from charged tracks
    good_neutral = neutral.copy()
    if spec.shower_position is not None and spec.shower_energy is not None and spec.shower_time is not None:
        position = np.stack([raw[name] for name in spec.shower_position], axis=1).astype(np.float64)
        distance = np.maximum(np.linalg.norm(position, axis=1), EPS)
        abs_cos = np.abs(position[:, 2]) / distance
        shower_energy = raw[spec.shower_energy]
        time = raw[spec.shower_time]
        barrel = (abs_cos < cuts.barrel_max_abs_cos) & (shower_energy > cuts.barrel_min_energy)
        low, high = cuts.endcap_abs_cos
        endcap = (abs_cos > low) & (abs_cos < high) & (shower_energy > cuts.endcap_min_energy)
        in_time = (time >= cuts.time_window[0]) & (time <= cuts.time_window[1])
        good_neutral &= has_shower & (barrel | endcap) & in_time

        # angle to every charged track of the event that reaches the EMC
        tracks = np.flatnonzero(charged)
        vz = None if cuts.vz is None else np.where(missing[cuts.vz][tracks], 0.0, raw[cuts.vz][tracks])
        charge = raw[spec.charge][tracks] if spec.charge is not None else np.zeros(len(tracks))
        direction, usable = track_directions(p4[tracks], charge, vz, cuts.detector)
        track_vector = np.zeros((num_nodes, 3))
        track_vector[tracks] = direction
        track_usable = np.zeros(num_nodes, dtype=bool)
        track_usable[tracks] = usable
        source, target = ordered_pairs(offsets)
        relevant = good_neutral[target] & track_usable[source]
        source, target = source[relevant], target[relevant]
        track = track_vector[source]
        track_norm = np.maximum(np.linalg.norm(track, axis=1), EPS)
        cos_angle = (position[target] * track).sum(axis=1) / (distance[target] * track_norm)
        too_close = cos_angle > np.cos(np.radians(cuts.isolation_deg))
        near_track = np.bincount(target[too_close], minlength=num_nodes) > 0
        good_neutral &= ~near_track

    return np.stack([
        _event_sum(charged, event_of_node, num_events),
        _event_sum(neutral, event_of_node, num_events),
        _event_sum(good_charged, event_of_node, num_events),
        _event_sum(good_neutral, event_of_node, num_events),
    ], axis=1)
