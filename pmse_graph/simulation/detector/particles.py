"""Detector-response categories of final-state particles.

The response treats particles by how they interact, not by their exact
species: a K+ and a pi+ leave the same kind of track and shower, and a KL
interacts in the calorimeter as a neutron does. :func:`classify` maps PDG codes
to these categories and charges in one vectorised pass. Codes outside the table
fall back on their charge from the ``particle`` package (charged hadron or
neutral hadron) and are counted by the caller.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from particle import InvalidParticle, ParticleNotFound

from pmse_graph.physics import pdg as pdg_lookup


class Category(IntEnum):
    """Detector signature class of a final-state particle."""

    INVISIBLE = 0
    PHOTON = 1
    ELECTRON = 2
    MUON = 3
    CHARGED_HADRON = 4
    PROTON = 5
    ANTINUCLEON = 6
    NEUTRAL_HADRON = 7


KNOWN_CATEGORIES: dict[int, Category] = {
    22: Category.PHOTON,
    -22: Category.PHOTON,  # BESIII marks PHOTOS radiation photons with -22
    11: Category.ELECTRON,
    -11: Category.ELECTRON,
    13: Category.MUON,
    -13: Category.MUON,
    211: Category.CHARGED_HADRON,
    -211: Category.CHARGED_HADRON,
    321: Category.CHARGED_HADRON,
    -321: Category.CHARGED_HADRON,
    2212: Category.PROTON,
    -2212: Category.ANTINUCLEON,
    2112: Category.NEUTRAL_HADRON,
    -2112: Category.ANTINUCLEON,
    130: Category.NEUTRAL_HADRON,
    12: Category.INVISIBLE,
    -12: Category.INVISIBLE,
    14: Category.INVISIBLE,
    -14: Category.INVISIBLE,
    16: Category.INVISIBLE,
    -16: Category.INVISIBLE,
}

KNOWN_CHARGES: dict[int, int] = {
    -11: 1, 11: -1, -13: 1, 13: -1, 211: 1, -211: -1, 321: 1, -321: -1, 2212: 1, -2212: -1,
}


def classify(pdg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map PDG codes to detector categories and integer charges.

    Args:
        pdg: PDG codes, shape ``(n,)``.

    Returns:
        ``(category, charge, unknown)``: int8 categories, int32 charges and a bool
        mask of codes outside :data:`KNOWN_CATEGORIES`, each of shape ``(n,)``.
        Unknown charged codes become ``CHARGED_HADRON``, unknown neutral codes
        ``NEUTRAL_HADRON``, and codes the ``particle`` package cannot resolve are
        treated as neutral hadrons.
    """
    codes, inverse = np.unique(pdg, return_inverse=True)
    code_category = np.empty(codes.shape[0], dtype=np.int8)
    code_charge = np.zeros(codes.shape[0], dtype=np.int32)
    code_unknown = np.zeros(codes.shape[0], dtype=bool)
    for position, code in enumerate(codes.tolist()):
        # one iteration per distinct PDG code in the chunk, not per particle
        if code in KNOWN_CATEGORIES:
            code_category[position] = KNOWN_CATEGORIES[code]
            code_charge[position] = KNOWN_CHARGES.get(code, 0)
            continue
        code_unknown[position] = True
        try:
            charge = int(round(pdg_lookup.charge(code)))
        except (InvalidParticle, ParticleNotFound):
            charge = 0
        code_charge[position] = int(np.sign(charge))
        code_category[position] = Category.CHARGED_HADRON if charge != 0 else Category.NEUTRAL_HADRON
    return code_category[inverse], code_charge[inverse], code_unknown[inverse]
