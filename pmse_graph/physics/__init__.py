"""Pure kinematics helpers and PDG constants shared by every other subpackage."""

from pmse_graph.physics.kinematics import (
    energy,
    invariant_mass,
    invariant_mass_squared,
    log_kt,
    log_momentum_fraction,
    opening_angle_cos_sin,
    pair_features,
)

__all__ = [
    "energy",
    "invariant_mass",
    "invariant_mass_squared",
    "log_kt",
    "log_momentum_fraction",
    "opening_angle_cos_sin",
    "pair_features",
]
