"""PDG masses, widths and charges used across the package.

Look-ups go through the ``particle`` package (PDG data) and are cached. The
constants below are the few that the data layer and the selection need
without a look-up.
"""

from __future__ import annotations

from functools import lru_cache

PION_MASS = 0.13957039
"""Charged pion mass in GeV (PDG 2022), the mass hypothesis for charged tracks in pair features."""

PI0_MASS = 0.1349768
JPSI_MASS = 3.0969
BEAM_CROSSING_PX = 0.034
"""J/psi momentum along x (GeV/c) from the 22 mrad BEPCII crossing angle (approximate)."""


@lru_cache(maxsize=None)
def mass(pdg_id: int) -> float:
    """Return the PDG mass of ``pdg_id`` in GeV."""
    from particle import Particle

    value = Particle.from_pdgid(pdg_id).mass
    if value is None:
        raise KeyError(f"No mass known for PDG id {pdg_id}")
    return float(value) / 1000.0


@lru_cache(maxsize=None)
def width(pdg_id: int) -> float:
    """Return the PDG total width of ``pdg_id`` in GeV (0 when unknown or stable)."""
    from particle import Particle

    value = Particle.from_pdgid(pdg_id).width
    return 0.0 if value is None else float(value) / 1000.0


@lru_cache(maxsize=None)
def charge(pdg_id: int) -> float:
    """Return the electric charge of ``pdg_id`` in units of e."""
    from particle import Particle

    return float(Particle.from_pdgid(pdg_id).charge)
