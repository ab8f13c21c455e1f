"""The columnar event chunk that the reader produces and the graph builder consumes.

An :class:`EventChunk` contains many events as flat particle arrays plus
per-event offsets (compressed sparse rows). Raw feature values are kept as read,
with a missing mask, so that the standardiser can be fitted on chunks and the
graph builder applies it later. Selecting or concatenating events works on
whole columns with no loop over events.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np


def ranges_to_indices(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for every (start, count) pair, without a Python loop.

    Args:
        starts: first index of each range, shape ``(R,)``.
        counts: length of each range, shape ``(R,)``.

    Returns:
        int64 indices, shape ``(counts.sum(),)``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    range_begin = np.cumsum(counts) - counts
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - range_begin, counts)
    return shift + np.arange(total, dtype=np.int64)


def counts_to_offsets(counts: np.ndarray) -> np.ndarray:
    """Return offsets of shape ``(len(counts) + 1,)`` starting at 0."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


@dataclass
class EventChunk:
    """Events of one read step, particles flattened over events.

    Attributes:
        sources: file paths the events came from; ``source_index`` points into it.
        source_index: file of each event, shape ``(num_events,)`` int32.
        entry: entry number of each event in its file's tree, shape ``(num_events,)`` int64.
        event_id: event ids, shape ``(num_events,)`` int64.
        offsets: start of each event in the particle arrays, shape ``(num_events + 1,)`` int64.
        continuous: raw continuous features in schema order, shape ``(num_nodes, Fc)`` float32;
            missing entries contain 0.
        missing: True where a continuous feature is missing, shape ``(num_nodes, Fc)`` bool.
        present: one presence flag per flagged schema group, shape ``(num_nodes, G)`` bool.
        categorical: category indices, the last index of each column meaning missing,
            shape ``(num_nodes, C)`` int64.
        p4: four-momenta ``(px, py, pz, E)`` used for pair features, GeV, shape ``(num_nodes, 4)`` float32.
        shower: EMC shower ``(x, y, z, time)`` in cm and 50 ns units, shape ``(num_nodes, 4)`` float32
            (zeros when the schema declares no shower).
        has_shower: True for particles with an EMC shower, shape ``(num_nodes,)`` bool.
        cond: condition counts (charged, neutral, good charged, good neutral),
            shape ``(num_events, 4)`` int64.
        y: decay-tree class id, -1 when unknown, shape ``(num_events,)`` int64.
        y_fs: final-state class id, -1 when unknown, shape ``(num_events,)`` int64.
    """

    sources: list[str]
    source_index: np.ndarray
    entry: np.ndarray
    event_id: np.ndarray
    offsets: np.ndarray
    continuous: np.ndarray
    missing: np.ndarray
    present: np.ndarray
    categorical: np.ndarray
    p4: np.ndarray
    shower: np.ndarray
    has_shower: np.ndarray
    cond: np.ndarray
    y: np.ndarray
    y_fs: np.ndarray
    _node_fields: ClassVar[tuple[str, ...]] = ("continuous", "missing", "present", "categorical", "p4", "shower", "has_shower")

    @property
    def num_events(self) -> int:
        """Number of events in the chunk."""
        return len(self.offsets) - 1

    @property
    def num_nodes(self) -> int:
        """Number of particles in the chunk."""
        return int(self.offsets[-1])

    @property
    def counts(self) -> np.ndarray:
        """Particles per event, shape ``(num_events,)`` int64."""
        return np.diff(self.offsets)

    def _event_fields(self) -> list[str]:
        names = [f.name for f in fields(self)]
        return [name for name in names if name not in self._node_fields and name not in ("sources", "offsets")]

    def select(self, indices: np.ndarray) -> "EventChunk":
        """Return the events at ``indices`` (any order, repeats allowed) as a new chunk."""
        indices = np.asarray(indices, dtype=np.int64)
        counts = self.counts[indices]
        node_index = ranges_to_indices(self.offsets[:-1][indices], counts)
        values = {name: getattr(self, name)[indices] for name in self._event_fields()}
        values.update({name: getattr(self, name)[node_index] for name in self._node_fields})
        return EventChunk(sources=self.sources, offsets=counts_to_offsets(counts), **values)

    def slice(self, start: int, stop: int) -> "EventChunk":
        """Return events ``start`` to ``stop - 1`` as a chunk of views into this one, without copying."""
        start, stop = max(0, start), min(stop, self.num_events)
        stop = max(start, stop)
        node_start, node_stop = int(self.offsets[start]), int(self.offsets[stop])
        values = {name: getattr(self, name)[start:stop] for name in self._event_fields()}
        values.update({name: getattr(self, name)[node_start:node_stop] for name in self._node_fields})
        return EventChunk(sources=self.sources, offsets=self.offsets[start : stop + 1] - node_start, **values)

    def where(self, keep: np.ndarray) -> "EventChunk":
        """Return the events where the boolean mask ``keep`` (shape ``(num_events,)``) is True."""
        return self.select(np.flatnonzero(keep))

    def location(self, event: int) -> str:
        """Describe where event ``event`` of this chunk comes from: file and entry."""
        return f"{self.sources[int(self.source_index[event])]}, entry {int(self.entry[event])}"

    @staticmethod
    def concatenate(chunks: list["EventChunk"]) -> "EventChunk":
        """Join chunks event-wise; sources lists are merged and indices renumbered."""
        if not chunks:
            raise ValueError("Expected at least one chunk to concatenate (got none)")
        if len(chunks) == 1:
            return chunks[0]
        sources: list[str] = []
        source_index = []
        for chunk in chunks:
            mapping = np.array([_index_of(sources, name) for name in chunk.sources], dtype=np.int32)
            source_index.append(mapping[chunk.source_index] if len(mapping) else chunk.source_index)
        first = chunks[0]
        values = {name: np.concatenate([getattr(c, name) for c in chunks]) for name in first._event_fields()}
        values["source_index"] = np.concatenate(source_index)
        values.update({name: np.concatenate([getattr(c, name) for c in chunks]) for name in first._node_fields})
        counts = np.concatenate([c.counts for c in chunks])
        return EventChunk(sources=sources, offsets=counts_to_offsets(counts), **values)


def _index_of(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)
