"""Track and shower geometry shared by the sub-detector modules.

Charged particles follow a helix in the uniform solenoid field along +z; neutral
particles follow straight lines. All functions work on whole columns of
particles. Positions are in cm, momenta in GeV/c, the field in tesla.

The extrapolation to a detector surface (:func:`impact_on_cylinder`) lives in
:mod:`pmse_graph.physics.helix`, shared with the data layer's photon isolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.physics.helix import (  # noqa: F401  (re-exported for the sub-detector modules)
    CURVATURE_CONSTANT,
    EPS,
    STRAIGHT_LINE_RADIUS_CM,
    Impact,
    helix_radius_cm,
    impact_on_cylinder,
    row_norm,
)

SPEED_OF_LIGHT_CM_PER_PS = 0.0299792458


def cos_theta(vectors: np.ndarray) -> np.ndarray:
    """Return cos(theta) to the beam axis of vectors of shape ``(n, 3)``; 0 for null vectors."""
    return vectors[:, 2] / np.maximum(row_norm(vectors), EPS)


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Return ``vectors / |vectors|`` row by row, shape ``(n, 3)``."""
    return vectors / np.maximum(row_norm(vectors), EPS)[:, None]


@dataclass
class ClosestApproach:
    """Point of closest approach of helices to the beam line (z axis).

    Attributes:
        position: ``(x, y, z)`` of the point, shape ``(n, 3)`` cm.
        momentum: momentum at that point, shape ``(n, 3)`` GeV/c.
    """

    position: np.ndarray
    momentum: np.ndarray


def closest_approach_to_beam(
    *, vertex: np.ndarray, momentum: np.ndarray, charge: np.ndarray, field_tesla: float
) -> ClosestApproach:
    """Follow each helix, forwards or backwards, to its point of closest approach to the z axis.

    A positive charge in a field along +z turns clockwise seen from +z, so the
    circle centre sits at ``vertex + R (py, -px) / pt`` (mirrored for negative
    charge).

    Args:
        vertex: production vertices, shape ``(n, 3)`` cm.
        momentum: momenta at the vertex, shape ``(n, 3)`` GeV/c.
        charge: charges in units of e (non-zero), shape ``(n,)``.
        field_tesla: solenoid field.
    """
    px, py, pz = momentum[:, 0], momentum[:, 1], momentum[:, 2]
    pt = np.maximum(np.hypot(px, py), EPS)
    radius = helix_radius_cm(pt, field_tesla)
    turn = np.sign(charge) * np.sign(field_tesla)

    centre_x = vertex[:, 0] + turn * radius * py / pt
    centre_y = vertex[:, 1] - turn * radius * px / pt
    centre_distance = np.maximum(np.hypot(centre_x, centre_y), EPS)

    # the closest point of the circle to the axis lies on the line from the centre to the axis
    scale = 1.0 - radius / centre_distance
    poca_x = centre_x * scale
    poca_y = centre_y * scale

    # signed rotation of the radius vector from the vertex to the closest point
    start_x, start_y = vertex[:, 0] - centre_x, vertex[:, 1] - centre_y
    end_x, end_y = poca_x - centre_x, poca_y - centre_y
    rotation = np.arctan2(start_x * end_y - start_y * end_x, start_x * end_x + start_y * end_y)

    # a clockwise turn (positive charge) moves forward while the angle decreases
    arc_length = -turn * radius * rotation
    poca_z = vertex[:, 2] + arc_length * pz / pt

    cos_r, sin_r = np.cos(rotation), np.sin(rotation)
    momentum_at_poca = np.stack([px * cos_r - py * sin_r, px * sin_r + py * cos_r, pz], axis=1)
    position = np.stack([poca_x, poca_y, poca_z], axis=1)
    return ClosestApproach(position=position, momentum=momentum_at_poca)


def event_pairs(event_a: np.ndarray, event_b: np.ndarray, num_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Return index pairs ``(i, j)`` of rows of two event-sorted tables that share an event.

    Args:
        event_a: event index of each row of table A, sorted ascending, shape ``(na,)``.
        event_b: event index of each row of table B, sorted ascending, shape ``(nb,)``.
        num_events: number of events in the chunk.

    Returns:
        Row indices into A and into B, each of shape ``(num_pairs,)`` int64.
    """
    counts_b = np.bincount(event_b, minlength=num_events)
    starts_b = np.concatenate([[0], np.cumsum(counts_b)[:-1]])
    repeats = counts_b[event_a]
    rows_a = np.repeat(np.arange(event_a.shape[0], dtype=np.int64), repeats)
    first_pair = np.cumsum(repeats) - repeats
    within = np.arange(rows_a.shape[0], dtype=np.int64) - np.repeat(first_pair, repeats)
    rows_b = starts_b[event_a][rows_a] + within
    return rows_a, rows_b


def cos_angle_of_pairs(unit_a: np.ndarray, unit_b: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Return the cosine of the angle between ``unit_a[rows_a]`` and ``unit_b[rows_b]``, shape ``(num_pairs,)``.

    Args:
        unit_a: unit vectors, shape ``(na, 3)``.
        unit_b: unit vectors, shape ``(nb, 3)``.
        rows_a: row indices into ``unit_a``, shape ``(num_pairs,)``.
        rows_b: row indices into ``unit_b``, shape ``(num_pairs,)``.
    """
    dot = unit_a[rows_a, 0] * unit_b[rows_b, 0]
    dot += unit_a[rows_a, 1] * unit_b[rows_b, 1]
    dot += unit_a[rows_a, 2] * unit_b[rows_b, 2]
    return dot
