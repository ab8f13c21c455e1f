"""Hand-built TruthChunks for the detector-response tests: one particle species, many events."""

from __future__ import annotations

import numpy as np

from pmse_graph.simulation.truth import TruthChunk

JPSI_PDG = 443
JPSI_MASS = 3.0969


def isotropic_directions(rng: np.random.Generator, num: int, *, cos_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Return unit vectors with cos(theta) uniform in ``cos_range``, shape ``(num, 3)``."""
    cos = rng.uniform(*cos_range, size=num)
    sin = np.sqrt(1.0 - cos**2)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=num)
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)


def make_chunk(
    *, pdg: np.ndarray, momentum: np.ndarray, mass: np.ndarray, per_event: int = 1, vertex: np.ndarray | None = None
) -> TruthChunk:
    """Build a chunk whose events hold a J/psi followed by ``per_event`` final-state particles.

    Args:
        pdg: PDG codes of the final-state particles, shape ``(n,)`` with n divisible by ``per_event``.
        momentum: their momenta, shape ``(n, 3)`` GeV/c.
        mass: their masses, shape ``(n,)`` GeV.
        per_event: final-state particles per event.
        vertex: production vertices, shape ``(n, 3)`` cm (default: origin).
    """
    n = pdg.shape[0]
    num_events = n // per_event
    size = per_event + 1
    total = num_events * size
    is_daughter = np.ones(total, dtype=bool)
    is_daughter[::size] = False

    all_pdg = np.full(total, JPSI_PDG, dtype=np.int32)
    all_pdg[is_daughter] = pdg
    mother = np.zeros(total, dtype=np.int32)
    mother[~is_daughter] = -1
    p4 = np.zeros((total, 4))
    p4[~is_daughter, 3] = JPSI_MASS
    p4[is_daughter, :3] = momentum
    p4[is_daughter, 3] = np.sqrt(np.sum(momentum**2, axis=1) + mass**2)
    all_vertex = np.zeros((total, 3))
    if vertex is not None:
        all_vertex[is_daughter] = vertex
    return TruthChunk(
        event_id=np.arange(num_events, dtype=np.int64),
        tree_id=np.zeros(num_events, dtype=np.int32),
        final_state_id=np.zeros(num_events, dtype=np.int32),
        offsets=np.arange(num_events + 1, dtype=np.int64) * size,
        pdg=all_pdg,
        mother=mother,
        p4=p4,
        vertex=all_vertex,
        is_final=is_daughter,
    )


def single_particles(
    pdg: int, mass: float, momentum: float, num: int, *, seed: int = 1, cos_range: tuple[float, float] = (-1.0, 1.0)
) -> TruthChunk:
    """Build ``num`` one-particle events of fixed momentum and isotropic direction in ``cos_range``."""
    rng = np.random.default_rng(seed)
    directions = isotropic_directions(rng, num, cos_range=cos_range)
    return make_chunk(pdg=np.full(num, pdg), momentum=momentum * directions, mass=np.full(num, mass))
