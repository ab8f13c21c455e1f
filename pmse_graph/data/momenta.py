"""Four-momenta and EMC shower vectors of the particles, as the pair features need them.

Charged tracks take their measured momentum with the schema's charged mass
hypothesis (the pion mass for BESIII). A particle without a measured momentum
but with an EMC shower (a BESIII neutral shower) takes the shower energy along
the direction from the origin to the shower position, with zero mass. The
origin replaces the event vertex, which the ntuple does not store.
"""

from __future__ import annotations

import numpy as np

from pmse_graph.data.schema import Schema
from pmse_graph.physics.kinematics import EPS


def build_momenta(raw: dict[str, np.ndarray], missing: dict[str, np.ndarray],
                  schema: Schema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (p4, shower, has_shower) for every particle.

    Args:
        raw: feature name -> raw values, shape ``(num_nodes,)``; missing entries contain 0.
        missing: feature name -> missing mask, shape ``(num_nodes,)``.
        schema: the event schema whose ``momentum`` block names the features.

    Returns:
        ``p4`` (num_nodes, 4) float32 ordered (px, py, pz, E) in GeV; ``shower``
        (num_nodes, 4) float32 ordered (x, y, z, time) in cm and 50 ns units;
        ``has_shower`` (num_nodes,) bool.
    """
    spec = schema.momentum
    num_nodes = len(raw[spec.px])
    p3 = np.stack([raw[spec.px], raw[spec.py], raw[spec.pz]], axis=1).astype(np.float64)
    p3_missing = missing[spec.px] | missing[spec.py] | missing[spec.pz]

    charged = np.zeros(num_nodes, dtype=bool)
    if spec.charge is not None:
        charged = (raw[spec.charge] != 0) & ~missing[spec.charge]
    mass = np.where(charged, spec.charged_mass, spec.neutral_mass)
    energy = np.sqrt((p3 * p3).sum(axis=1) + mass * mass)
    if spec.energy is not None:
        energy = np.where(missing[spec.energy], energy, raw[spec.energy].astype(np.float64))

    shower = np.zeros((num_nodes, 4), dtype=np.float64)
    has_shower = np.zeros(num_nodes, dtype=bool)
    if spec.shower_position is not None:
        x, y, z = spec.shower_position
        shower[:, :3] = np.stack([raw[x], raw[y], raw[z]], axis=1)
        has_shower = ~(missing[x] | missing[y] | missing[z])
        if spec.shower_time is not None:
            shower[:, 3] = raw[spec.shower_time]
        if spec.shower_energy is not None:
            has_shower &= ~missing[spec.shower_energy]
            use_shower = p3_missing & has_shower
            shower_energy = raw[spec.shower_energy].astype(np.float64)
            distance = np.maximum(np.linalg.norm(shower[:, :3], axis=1), EPS)
            direction = shower[:, :3] / distance[:, None]
            p3 = np.where(use_shower[:, None], shower_energy[:, None] * direction, p3)
            energy = np.where(use_shower, shower_energy, energy)

    # particles with neither a momentum nor a shower carry a zero four-momentum
    nothing = p3_missing & ~has_shower
    p3[nothing] = 0.0
    energy = np.where(nothing, 0.0, energy)
    p4 = np.concatenate([p3, energy[:, None]], axis=1).astype(np.float32)
    return p4, shower.astype(np.float32), has_shower
