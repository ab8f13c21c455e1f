"""The four per-event conditions: charged and neutral counts, before and after selection.

Used when the ntuple does not store the counts. The cuts are BESIII's, with
the values in the schema's ``selection`` block:

* good charged track: |Vz| < 10 cm, Vr < 1 cm and |cos theta| < 0.93;
* good photon: a neutral shower in the barrel (|cos theta| < 0.80, E > 25 MeV) or an
  endcap (0.86 < |cos theta| < 0.92, E > 50 MeV), with EMC time in 0-14 (50 ns units)
  and more than 10 degrees from every charged track's momentum.

A schema without vertex features counts every charged track as good, and one
without EMC shower features counts every neutral particle as a good photon.
"""

from __future__ import annotations

import numpy as np

from pmse_graph.data.pairs import ordered_pairs
from pmse_graph.data.schema import Schema
from pmse_graph.physics.kinematics import EPS


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

        source, target = ordered_pairs(offsets)
        relevant = good_neutral[target] & charged[source]
        source, target = source[relevant], target[relevant]
        track = p4[source, :3].astype(np.float64)
        track_norm = np.linalg.norm(track, axis=1)
        cos_angle = (position[target] * track).sum(axis=1) / (distance[target] * np.maximum(track_norm, EPS))
        too_close = (cos_angle > np.cos(np.radians(cuts.isolation_deg))) & (track_norm > 0)
        near_track = np.bincount(target[too_close], minlength=num_nodes) > 0
        good_neutral &= ~near_track

    return np.stack([
        _event_sum(charged, event_of_node, num_events),
        _event_sum(neutral, event_of_node, num_events),
        _event_sum(good_charged, event_of_node, num_events),
        _event_sum(good_neutral, event_of_node, num_events),
    ], axis=1)
