"""Index arrays over flattened decay trees: mothers, daughters, generations and sisters.

:class:`TreeIndex` checks and indexes many decay trees given in BESIII's truth layout (flat
PDG codes, mother indices counted from the start of each event, per-event offsets), so that
the decayer can visit every generation of all events with array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.errors import DataError


@dataclass
class TreeIndex:
    """Flattened decay trees with the index arrays that the decay steps need.

    Attributes:
        pdg: PDG codes, shape ``(num_particles,)``.
        mother: mother index within the event, -1 for the root, shape ``(num_particles,)``.
        offsets: event starts, shape ``(num_events + 1,)``.
        event: event of each particle, shape ``(num_particles,)``.
        global_mother: mother index into the flat arrays, -1 for roots, shape ``(num_particles,)``.
        num_children: daughters of each particle, shape ``(num_particles,)``.
        depth: generation of each particle, 0 for the root, shape ``(num_particles,)``.
        sorted_children: non-root particles grouped by mother, in index order within a group.
        first_child: position in ``sorted_children`` of each particle's first daughter.
        sibling_rank: position of each particle among its sisters, shape ``(num_particles,)``.
        by_depth: particle indices at each depth, one array per generation.
    """

    pdg: np.ndarray
    mother: np.ndarray
    offsets: np.ndarray
    event: np.ndarray
    global_mother: np.ndarray
    num_children: np.ndarray
    depth: np.ndarray
    sorted_children: np.ndarray
    first_child: np.ndarray
    sibling_rank: np.ndarray
    by_depth: list[np.ndarray]

    @property
    def num_events(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def roots(self) -> np.ndarray:
        return self.offsets[:-1]

    @property
    def max_depth(self) -> int:
        return int(self.depth.max()) + 1 if self.depth.size else 0

    @classmethod
    def build(cls, *, pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray) -> TreeIndex:
        num_particles = pdg.shape[0]
        if mother.shape != pdg.shape:
            raise DataError(f"Expected one mother index per particle (got {mother.shape[0]} for {num_particles} PDG codes)")
        if offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != num_particles or np.any(np.diff(offsets) < 1):
            raise DataError(f"Invalid event offsets: expected 0 .. {num_particles} with at least one particle per event")
        counts = np.diff(offsets)
        event = np.repeat(np.arange(counts.shape[0]), counts)
        local = np.arange(num_particles) - offsets[event]
        mother = mother.astype(np.int64)
        is_root = local == 0
        if np.any(mother[is_root] != -1) or np.any(mother[~is_root] < 0) or np.any(mother[~is_root] >= local[~is_root]):
            bad = int(np.flatnonzero((is_root & (mother != -1)) | (~is_root & ((mother < 0) | (mother >= local))))[0])
            raise DataError(
                f"Invalid mother index {mother[bad]} for particle {local[bad]} of event {event[bad]}: "
                "expected -1 for the first particle and an earlier particle of the same event otherwise"
            )
        global_mother = np.where(is_root, -1, mother + offsets[event])
        non_root = np.flatnonzero(~is_root)
        num_children = np.bincount(global_mother[non_root], minlength=num_particles)

        depth = np.zeros(num_particles, dtype=np.int64)
        for _ in range(num_particles):
            updated = depth.copy()
            updated[non_root] = depth[global_mother[non_root]] + 1
            if np.array_equal(updated, depth):
                break
            depth = updated

        order = np.argsort(global_mother[non_root], kind="stable")
        sorted_children = non_root[order]
        first_child = np.concatenate([[0], np.cumsum(num_children)[:-1]])
        sibling_rank = np.zeros(num_particles, dtype=np.int64)
        sibling_rank[sorted_children] = np.arange(sorted_children.shape[0]) - first_child[global_mother[sorted_children]]
        order = np.argsort(depth, kind="stable")
        bounds = np.searchsorted(depth[order], np.arange(int(depth.max(initial=0)) + 2))
        by_depth = [order[bounds[level] : bounds[level + 1]] for level in range(bounds.shape[0] - 1)]
        return cls(
            pdg, mother, offsets, event, global_mother, num_children, depth, sorted_children, first_child, sibling_rank, by_depth
        )

    def subset(self, events: np.ndarray) -> tuple["TreeIndex", np.ndarray]:
        """Return the index of the trees of ``events`` and the positions of their particles here."""
        counts = np.diff(self.offsets)[events]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        particles = np.repeat(self.offsets[events] - offsets[:-1], counts) + np.arange(offsets[-1])
        return TreeIndex.build(pdg=self.pdg[particles], mother=self.mother[particles], offsets=offsets), particles

    def parents_at(self, level: int) -> np.ndarray:
        """Return the decaying particles at ``level`` (0 = the J/psi)."""
        return np.flatnonzero((self.depth == level) & (self.num_children > 0))

    def children_matrix(self, parents: np.ndarray, num_children: int) -> np.ndarray:
        """Return the children of ``parents`` in index order, shape ``(num_parents, num_children)``."""
        return self.sorted_children[self.first_child[parents, None] + np.arange(num_children)]

    def children_mass_sum(self, masses: np.ndarray, *, level: int | None = None) -> np.ndarray:
        """Return the summed mass of each particle's daughters (0 for leaves).

        With ``level``, only daughters at that depth count, which is all that the mothers one
        level up need.
        """
        if level is None:
            daughters = self.sorted_children
        else:
            daughters = self.by_depth[level] if level < len(self.by_depth) else np.zeros(0, dtype=np.int64)
        return np.bincount(self.global_mother[daughters], weights=masses[daughters], minlength=self.pdg.shape[0])
