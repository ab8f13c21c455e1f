"""Tests of the helix extrapolation to the EMC front that the detector and the data layer share."""

from __future__ import annotations

import numpy as np
import pytest

from pmse_graph.physics.helix import CURVATURE_CONSTANT, helix_radius_cm, impact_on_cylinder


def extrapolate(momentum, charge, *, vertex=(0.0, 0.0, 0.0)):
    return impact_on_cylinder(vertex=np.array([vertex], dtype=float), momentum=np.array([momentum], dtype=float),
                              charge=np.array([charge], dtype=float), field_tesla=1.0, radius_cm=94.0,
                              half_length_cm=138.0)


def test_neutral_flies_straight_to_the_barrel():
    impact = extrapolate((0.3, 0.4, 0.0), 0)
    np.testing.assert_allclose(impact.position[0], [94.0 * 0.6, 94.0 * 0.8, 0.0], atol=1e-6)
    assert impact.reached[0]
    assert impact.path_length[0] == pytest.approx(94.0)


@pytest.mark.parametrize("charge", [1.0, -1.0])
def test_charged_track_bends_by_the_chord_angle(charge):
    # pt 0.5 GeV/c in 1 T: radius 166.8 cm; the chord to r = 94 cm turns by asin(94 / (2 R))
    radius = helix_radius_cm(np.array([0.5]), 1.0)[0]
    assert radius == pytest.approx(0.5 / CURVATURE_CONSTANT)
    impact = extrapolate((0.5, 0.0, 0.2), charge)
    x, y, z = impact.position[0]
    assert np.hypot(x, y) == pytest.approx(94.0, rel=1e-9)
    # a positive charge in a field along +z turns clockwise seen from +z
    assert np.degrees(np.arctan2(y, x)) == pytest.approx(-charge * np.degrees(np.arcsin(94.0 / (2 * radius))))
    arc = 2 * radius * np.arcsin(94.0 / (2 * radius))
    assert z == pytest.approx(arc * 0.2 / 0.5)


def test_low_momentum_track_curls_or_exits():
    curling = extrapolate((0.1, 0.0, 0.001), 1)   # 2 R = 67 cm < 94 cm and no endcap within one turn
    assert not curling.reached[0]
    forward = extrapolate((0.1, 0.0, 0.5), 1)     # reaches the endcap plane within one turn
    assert forward.reached[0]
    assert forward.position[0, 2] == pytest.approx(138.0)
