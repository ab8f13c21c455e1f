"""Lateral shape variables of EMC clusters as BOSS defines them.

Each cluster draws how its energy spreads over the crystal array. The draws are
the shares of the seed crystal and of the 3x3 and 5x5 arrays around it, the
share of the 3x3 ring in the most energetic neighbour, and a number of crystals.
The BOSS variables follow from these shares with the mean squared distances of
the crystal rings from the seed, in units of the crystal size d:

- ``e3x3``, ``e5x5``: energy in the 3x3 and 5x5 arrays, so ``e3x3 <= e5x5 <= energy``;
- ``secmom``: energy-weighted mean of r^2 over the 5x5 array (cm^2);
- ``latmom``: sum of E r^2 over the crystals ranked third and lower, divided by that
  sum plus (E1 + E2) d^2, and 0 with fewer than three crystals.

The seed is placed at the shower centre, so the small offset of the real
centroid from the seed is neglected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.simulation.detector.config import EmcConfig, ShowerShapeConfig

SHOWER_EM = 0
SHOWER_MIP = 1
SHOWER_HADRONIC = 2

# mean squared distance from the seed, in crystal sizes squared, of the 8 crystals of the
# 3x3 ring ((4 * 1 + 4 * 2) / 8), the 16 of the 5x5 ring and the 24 of the 7x7 ring
RING1_R2 = 1.5
RING2_R2 = 5.5
RING3_R2 = (4 * 9 + 8 * 10 + 8 * 13 + 4 * 18) / 24
NEIGHBOUR_R2 = 1.0
NUM_HITS_REFERENCE_GEV = 0.020


@dataclass
class ShapeVariables:
    """BOSS shape variables of m clusters, each of shape ``(m,)``."""

    e3x3: np.ndarray
    e5x5: np.ndarray
    num_hits: np.ndarray
    second_moment: np.ndarray
    lateral_moment: np.ndarray


def _stack_parameters(shapes: tuple[ShowerShapeConfig, ...]) -> dict[str, np.ndarray]:
    return {
        "seed_mean": np.array([s.seed_fraction.mean for s in shapes]),
        "seed_sigma": np.array([s.seed_fraction.sigma for s in shapes]),
        "e3x3_mean": np.array([s.e3x3_fraction.mean for s in shapes]),
        "e3x3_sigma": np.array([s.e3x3_fraction.sigma for s in shapes]),
        "e5x5_mean": np.array([s.e5x5_fraction.mean for s in shapes]),
        "e5x5_sigma": np.array([s.e5x5_fraction.sigma for s in shapes]),
        "share_low": np.array([s.second_crystal_share.low for s in shapes]),
        "share_high": np.array([s.second_crystal_share.high for s in shapes]),
        "hits_base": np.array([s.num_hits_base for s in shapes]),
        "hits_slope": np.array([s.num_hits_per_log_energy for s in shapes]),
        "hits_max": np.array([s.max_num_hits for s in shapes]),
    }


def shape_variables(
    *, energy: np.ndarray, kind: np.ndarray, config: EmcConfig, rng: np.random.Generator
) -> ShapeVariables:
    """Draw the lateral shape of clusters and derive the BOSS variables.

    Args:
        energy: cluster energies, shape ``(m,)`` GeV (positive).
        kind: shower class per cluster (``SHOWER_EM``, ``SHOWER_MIP``, ``SHOWER_HADRONIC``), shape ``(m,)``.
        config: EMC parameters (``shape_em``, ``shape_mip``, ``shape_hadronic``, ``crystal_size_cm``).
        rng: random generator.
    """
    m = energy.shape[0]
    table = _stack_parameters((config.shape_em, config.shape_mip, config.shape_hadronic))
    take = {name: values[kind] for name, values in table.items()}

    # number of crystals grows with the log of the energy
    mean_extra = take["hits_base"] + take["hits_slope"] * np.log(np.maximum(energy, 1e-6) / NUM_HITS_REFERENCE_GEV)
    num_hits = 1 + rng.poisson(np.maximum(mean_extra, 0.0))
    num_hits = np.minimum(num_hits, take["hits_max"]).astype(np.int32)

    # nested energy shares: seed <= 3x3 <= 5x5 <= 1
    seed = np.clip(take["seed_mean"] + take["seed_sigma"] * rng.standard_normal(m), 0.05, 1.0)
    in3x3 = np.clip(take["e3x3_mean"] + take["e3x3_sigma"] * rng.standard_normal(m), seed, 1.0)
    in5x5 = np.clip(take["e5x5_mean"] + take["e5x5_sigma"] * rng.standard_normal(m), in3x3, 1.0)
    share = rng.uniform(take["share_low"], take["share_high"])

    # a single crystal contains all the energy, and two crystals are the seed and one neighbour
    single = num_hits == 1
    pair = num_hits == 2
    seed = np.where(single, 1.0, seed)
    in3x3 = np.where(single | pair, 1.0, in3x3)
    in5x5 = np.where(single | pair, 1.0, in5x5)
    share = np.where(pair, 1.0, share)

    ring1 = in3x3 - seed
    second = share * ring1
    ranked_third_on = (ring1 - second) * RING1_R2 + (in5x5 - in3x3) * RING2_R2 + (1.0 - in5x5) * RING3_R2
    lateral = ranked_third_on / np.maximum(ranked_third_on + seed + second, 1e-12)
    lateral = np.where(num_hits >= 3, lateral, 0.0)

    crystal_sq = config.crystal_size_cm**2
    second_moment = crystal_sq * (second * NEIGHBOUR_R2 + (ring1 - second) * RING1_R2 + (in5x5 - in3x3) * RING2_R2) / in5x5
    return ShapeVariables(
        e3x3=in3x3 * energy,
        e5x5=in5x5 * energy,
        num_hits=num_hits,
        second_moment=second_moment,
        lateral_moment=lateral,
    )
