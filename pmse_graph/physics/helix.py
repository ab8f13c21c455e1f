"""Helix extrapolation of tracks to a detector surface in a uniform solenoid field.

Charged particles follow a helix in a field along +z; neutral particles fly
straight. Positions are in cm, momenta in GeV/c, the field in tesla. The
detector response (``pmse_graph.simulation.detector``) and the data layer's
good-photon isolation (``pmse_graph.data.conditions``) both use
:func:`impact_on_cylinder`, so a track's impact point on the EMC is computed
one way everywhere.

The extrapolation starts the helix at the given vertex but measures the
surface radius from that vertex rather than from the beam line. Displaced KS
and Lambda vertices sit a few cm from the axis against 81-94 cm radii, so the
impact points move by about that much, which is below one EMC crystal for most
tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CURVATURE_CONSTANT = 0.299792458e-2
"""Helix radius in cm is ``pt / (CURVATURE_CONSTANT * B)`` with pt in GeV/c and B in tesla."""

STRAIGHT_LINE_RADIUS_CM = 1e12
EPS = 1e-12


def helix_radius_cm(pt: np.ndarray, field_tesla: float) -> np.ndarray:
    """Return the radius of curvature in cm of tracks with transverse momentum ``pt`` (GeV/c)."""
    return pt / (CURVATURE_CONSTANT * field_tesla)


def row_norm(vectors: np.ndarray) -> np.ndarray:
    """Return the length of each row of ``vectors``, shape ``(n,)`` (faster than ``np.linalg.norm`` here)."""
    return np.sqrt(np.einsum("ij,ij->i", vectors, vectors))


@dataclass
class Impact:
    """Crossing points of tracks with a detector surface made of a barrel cylinder and two endcap planes.

    Attributes:
        position: crossing point, shape ``(n, 3)`` cm (undefined where ``reached`` is False).
        path_length: 3D flight path from the vertex, shape ``(n,)`` cm.
        reached: True where the track reaches the surface, shape ``(n,)`` bool.
    """

    position: np.ndarray
    path_length: np.ndarray
    reached: np.ndarray


def impact_on_cylinder(
    *,
    vertex: np.ndarray,
    momentum: np.ndarray,
    charge: np.ndarray,
    field_tesla: float,
    radius_cm: float,
    half_length_cm: float,
) -> Impact:
    """Extrapolate particles to a barrel of ``radius_cm`` closed by planes at ``z = +-half_length_cm``.

    Neutral particles fly straight. A charged track reaches the barrel when its
    helix diameter exceeds the radius and it has not left through an endcap
    plane first. Otherwise it reaches an endcap plane if it gets there within
    one turn, and tracks that would need more turns curl up in the chamber.

    Args:
        vertex: production vertices, shape ``(n, 3)`` cm.
        momentum: momenta, shape ``(n, 3)`` GeV/c.
        charge: charges in units of e, shape ``(n,)``; 0 selects a straight line.
        field_tesla: solenoid field.
        radius_cm: barrel radius.
        half_length_cm: distance of the endcap planes from z = 0.
    """
    px, py, pz = momentum[:, 0], momentum[:, 1], momentum[:, 2]
    p = np.maximum(row_norm(momentum), EPS)
    pt = np.maximum(np.hypot(px, py), EPS)
    phi0 = np.arctan2(py, px)
    charged = charge != 0
    forward_sign = np.where(pz >= 0.0, 1.0, -1.0)
    # distance along z to the endcap plane the track flies towards
    dz_plane = forward_sign * half_length_cm - vertex[:, 2]
    abs_pz = np.maximum(np.abs(pz), EPS)

    # a neutral particle is a helix of (practically) infinite radius
    helix_r = np.where(charged, helix_radius_cm(pt, field_tesla), STRAIGHT_LINE_RADIUS_CM)
    ratio = radius_cm / (2.0 * helix_r)
    reaches_radius = ratio <= 1.0
    path_xy_barrel = 2.0 * helix_r * np.arcsin(np.clip(ratio, 0.0, 1.0))
    path_xy_plane = np.abs(dz_plane) * pt / abs_pz
    hits_barrel = reaches_radius & (path_xy_barrel <= path_xy_plane)

    path_xy = np.where(hits_barrel, path_xy_barrel, path_xy_plane)
    swept = path_xy / helix_r
    reached = hits_barrel | (swept <= 2.0 * np.pi)

    # the chord from the vertex turns by half the swept angle
    turn = np.sign(charge) * np.sign(field_tesla)
    chord = 2.0 * helix_r * np.abs(np.sin(0.5 * swept))
    chord_phi = phi0 - turn * 0.5 * swept
    z = np.where(hits_barrel, vertex[:, 2] + path_xy * pz / pt, forward_sign * half_length_cm)
    position = np.stack([vertex[:, 0] + chord * np.cos(chord_phi), vertex[:, 1] + chord * np.sin(chord_phi), z], axis=1)
    path_length = path_xy * p / pt
    return Impact(position=position, path_length=path_length, reached=reached)
