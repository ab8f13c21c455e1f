"""Helix extrapolation and per-event pairing of the detector geometry helpers."""

from __future__ import annotations

import numpy as np

from pmse_graph.simulation.detector.geometry import (
    closest_approach_to_beam,
    event_pairs,
    helix_radius_cm,
    impact_on_cylinder,
)


def test_helix_radius_one_gev_one_tesla():
    # R = pt / (0.3 B) m: 1 GeV/c in 1 T curls with a radius of 333.6 cm
    assert np.isclose(helix_radius_cm(np.array([1.0]), 1.0)[0], 333.564, rtol=1e-4)


def test_closest_approach_of_primary_track_is_origin():
    result = closest_approach_to_beam(
        vertex=np.zeros((1, 3)), momentum=np.array([[0.3, 0.4, 0.2]]), charge=np.array([1]), field_tesla=1.0
    )
    assert np.allclose(result.position, 0.0, atol=1e-9)
    assert np.allclose(result.momentum, [[0.3, 0.4, 0.2]], atol=1e-12)


def test_closest_approach_of_tangent_track():
    # a track born at (3, 0, 5) moving along +y is already at its closest approach, 3 cm from the axis
    for charge in (1, -1):
        result = closest_approach_to_beam(
            vertex=np.array([[3.0, 0.0, 5.0]]), momentum=np.array([[0.0, 0.5, 0.1]]), charge=np.array([charge]), field_tesla=1.0
        )
        assert np.isclose(np.hypot(*result.position[0, :2]), 3.0, atol=1e-6)
        assert np.isclose(result.position[0, 2], 5.0, atol=1e-6)


def test_closest_approach_extrapolates_backwards():
    # a displaced track pointing away from the axis comes back to it behind its vertex
    result = closest_approach_to_beam(
        vertex=np.array([[2.0, 0.0, 1.0]]), momentum=np.array([[1.0, 0.0, 1.0]]), charge=np.array([1]), field_tesla=1.0
    )
    assert np.hypot(*result.position[0, :2]) < 0.01
    assert np.isclose(result.position[0, 2], -1.0, atol=0.01)


def test_impact_of_neutral_on_barrel_and_endcap():
    momentum = np.array([[1.0, 0.0, 0.0], [0.1, 0.0, 1.0]])
    impact = impact_on_cylinder(
        vertex=np.zeros((2, 3)), momentum=momentum, charge=np.zeros(2), field_tesla=1.0, radius_cm=94.0, half_length_cm=138.0
    )
    assert impact.reached.all()
    assert np.allclose(impact.position[0], [94.0, 0.0, 0.0])
    assert np.allclose(impact.position[1], [13.8, 0.0, 138.0])
    assert np.allclose(impact.path_length, [94.0, np.hypot(13.8, 138.0)])


def test_impact_of_charged_track_on_barrel():
    momentum = np.array([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])
    impact = impact_on_cylinder(
        vertex=np.zeros((2, 3)), momentum=momentum, charge=np.array([1, -1]), field_tesla=1.0, radius_cm=94.0, half_length_cm=138.0
    )
    assert impact.reached.all()
    assert np.allclose(np.hypot(impact.position[:, 0], impact.position[:, 1]), 94.0)
    # positive tracks bend clockwise (towards negative y), negative ones counter-clockwise
    assert impact.position[0, 1] < 0.0 < impact.position[1, 1]
    # the arc is longer than the chord
    assert (impact.path_length > 94.0).all()


def test_impact_of_curling_track():
    # pt = 0.1 GeV/c gives a helix diameter of 67 cm: it never reaches 94 cm and, with
    # little pz, needs many turns to reach the endcap plane
    impact = impact_on_cylinder(
        vertex=np.zeros((1, 3)), momentum=np.array([[0.1, 0.0, 0.01]]), charge=np.array([1]), field_tesla=1.0,
        radius_cm=94.0, half_length_cm=138.0,
    )  # fmt: skip
    assert not impact.reached[0]


def test_event_pairs_matches_brute_force():
    rng = np.random.default_rng(3)
    event_a = np.sort(rng.integers(0, 6, size=15))
    event_b = np.sort(rng.integers(0, 6, size=11))
    rows_a, rows_b = event_pairs(event_a, event_b, 6)
    expected = {(i, j) for i in range(15) for j in range(11) if event_a[i] == event_b[j]}
    assert set(zip(rows_a.tolist(), rows_b.tolist())) == expected
    assert rows_a.shape[0] == len(expected)
