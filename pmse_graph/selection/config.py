"""Cuts of the rho pi selection and how the tightness knob moves them.

The defaults are the usual BESIII cuts for J/psi -> rho pi with the beams' 22 mrad crossing
angle. The good-track and good-photon cuts are not here: they come from the
detector parameters (``selection`` in ``configs/detector/besiii.yaml``).

A tightness ``t`` in [0, 1] moves four cuts together, linearly from their loose value at
``t = 0`` to their tight value at ``t = 1``. They are the rho band half-width Delta, the chi2
maximum, the margin by which the nearest band must beat the second nearest, and the extra
distance from every band that a non-resonant event must keep.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pmse_graph.config import StrictModel
from pmse_graph.physics.pdg import JPSI_MASS


class SelectionCuts(StrictModel):
    """Every cut of the selection that is not a detector parameter."""

    jpsi_mass: float = Field(JPSI_MASS, gt=0.0, description="J/psi mass in GeV")
    crossing_half_angle: float = Field(0.011, ge=0.0, lt=0.1, description="half the beam crossing angle in rad")
    pion_id: bool = Field(True, description="require both tracks to pass the pion identification")
    min_pion_probability: float = Field(0.001, ge=0.0, le=1.0, description="P(pi) a pion needs, unless P(pi) > P(K)")
    max_eop: float = Field(0.8, gt=0.0, description="e+e- veto: largest E/p of the two tracks")
    # NOTE: 30 cm sits between generated J/psi -> mu+ mu- (over 70% of events deeper than 40 cm) and
    # rho pi (no hits in 95% of events); tests/selection/test_selection.py checks both sides.
    # Retune it on real data, where the MUC response differs from the simulation's.
    max_muc_depth_cm: float = Field(30.0, ge=0.0, description="mu+mu- veto: largest MUC depth of the two tracks, cm")
    fit: Literal["5C", "4C"] = Field("5C", description="5C fit with M(gamma gamma) = m(pi0), or 4C plus a M(gamma gamma) window")
    pi0_window_gev: tuple[float, float] = Field((0.11, 0.15), description="M(gamma gamma) window of the 4C variant, GeV")
    max_photons: int = Field(10, ge=2, description="most energetic good photons per event that enter the combinations")
    rho_mass: float = Field(0.77526, gt=0.0, description="rho mass in GeV (PDG 2022)")
    delta_gev: tuple[float, float] = Field((0.30, 0.02), description="rho band half-width, loose and tight, GeV")
    max_chi2: tuple[float, float] = Field((200.0, 20.0), description="chi2 maximum of the 4C and 5C fits, loose and tight")
    overlap_margin_gev: tuple[float, float] = Field(
        (0.0, 0.10), description="how much closer the nearest band must be than the second, loose and tight, GeV"
    )
    nonresonant_margin_gev: tuple[float, float] = Field(
        (0.0, 0.50), description="distance beyond Delta from every band for a non-resonant event, loose and tight, GeV"
    )


class TightCuts(StrictModel):
    """The tightness-dependent cuts at one tightness."""

    tightness: float
    delta_gev: float
    max_chi2: float
    overlap_margin_gev: float
    nonresonant_margin_gev: float


def cuts_at(cuts: SelectionCuts, tightness: float) -> TightCuts:
    """Interpolate the tightness-dependent cuts at ``tightness`` in [0, 1].

    Raises:
        ValueError: when ``tightness`` is outside [0, 1].
    """
    if not 0.0 <= tightness <= 1.0:
        raise ValueError(f"Expected a tightness in [0, 1] (got {tightness})")

    def between(pair: tuple[float, float]) -> float:
        return pair[0] + tightness * (pair[1] - pair[0])

    return TightCuts(
        tightness=tightness,
        delta_gev=between(cuts.delta_gev),
        max_chi2=between(cuts.max_chi2),
        overlap_margin_gev=between(cuts.overlap_margin_gev),
        nonresonant_margin_gev=between(cuts.nonresonant_margin_gev),
    )
