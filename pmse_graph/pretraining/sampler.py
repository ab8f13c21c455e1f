"""Class-balanced batches drawn from a stream of event chunks.

With 99 decay-tree classes and a steeply falling class frequency, a plain shuffled batch of a
few hundred events contains many classes only once, so SupCon finds few positives. The
:class:`ClassBalancedBatcher` instead fills each batch with ``events_per_class`` events of
each of ``classes_per_batch`` classes (an "m per class" sampler), reading the data as a stream:

* incoming chunks join a buffer of waiting events, grouped by label,
* a batch is emitted whenever at least ``classes_per_batch`` classes have ``events_per_class``
  waiting events; its classes are drawn uniformly among those, its events uniformly within
  each class,
* each class keeps at most ``max_per_class`` waiting events (the newest), so memory stays
  bounded and frequent classes are down-sampled,
* events with an unknown label (-1) cannot be balanced and are skipped.

Every skipped or evicted event is counted in :class:`BalanceStats`. Selection is vectorised
(one sort per emitted batch); there is no loop over events.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from pmse_graph.data.chunk import EventChunk
from pmse_graph.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class BalanceStats:
    """Counts of what the batcher did with the events it read."""

    events_read: int = 0
    events_batched: int = 0
    skipped_unlabelled: int = 0
    evicted_over_cap: int = 0
    left_at_end: int = 0


class ClassBalancedBatcher:
    """Turns a chunk stream into chunks of ``classes_per_batch * events_per_class`` balanced events.

    Args:
        classes_per_batch: distinct classes per batch (k), at least 2.
        events_per_class: events of each class per batch (m), at least 2 so each has a positive.
        max_per_class: waiting events kept per class; older ones are evicted. Default 64 * m.
        label: chunk attribute holding the class id, ``"y"`` or ``"y_fs"``.
        seed: seed of the class and event draws.
    """

    def __init__(
        self,
        *,
        classes_per_batch: int,
        events_per_class: int,
        max_per_class: int | None = None,
        label: str = "y",
        seed: int = 0,
    ) -> None:
        if classes_per_batch < 2:
            raise ConfigError(f"classes_per_batch must be at least 2 (got {classes_per_batch})")
        if events_per_class < 2:
            raise ConfigError(f"events_per_class must be at least 2 so every event has a positive (got {events_per_class})")
        if label not in ("y", "y_fs"):
            raise ConfigError(f"label must be 'y' or 'y_fs' (got {label!r})")
        self.classes_per_batch = classes_per_batch
        self.events_per_class = events_per_class
        self.max_per_class = max_per_class if max_per_class is not None else 64 * events_per_class
        if self.max_per_class < events_per_class:
            raise ConfigError(f"max_per_class must be at least events_per_class (got {self.max_per_class} < {events_per_class})")
        self.label = label
        self.rng = np.random.default_rng(seed)
        self.stats = BalanceStats()

    @property
    def batch_size(self) -> int:
        """Events per emitted batch."""
        return self.classes_per_batch * self.events_per_class

    def batches(self, chunks: Iterable[EventChunk]) -> Iterator[EventChunk]:
        """Yield balanced chunks of :attr:`batch_size` events while reading ``chunks``."""
        buffer: EventChunk | None = None
        for chunk in chunks:
            self.stats.events_read += chunk.num_events
            labels = getattr(chunk, self.label)
            labelled = labels >= 0
            self.stats.skipped_unlabelled += int((~labelled).sum())
            if not labelled.any():
                continue
            incoming = chunk if labelled.all() else chunk.where(labelled)
            buffer = incoming if buffer is None else EventChunk.concatenate([buffer, incoming])
            buffer = self._evict_over_cap(buffer)

            while True:
                selection = self._draw(getattr(buffer, self.label))
                if selection is None:
                    break
                yield buffer.select(selection)
                self.stats.events_batched += selection.size
                keep = np.ones(buffer.num_events, dtype=bool)
                keep[selection] = False
                buffer = buffer.where(keep)

        if buffer is not None:
            self.stats.left_at_end += buffer.num_events
        if self.stats.skipped_unlabelled or self.stats.evicted_over_cap:
            logger.info(
                "class-balanced batching: %d events read, %d batched, %d unlabelled skipped, %d evicted over the per-class cap",
                self.stats.events_read,
                self.stats.events_batched,
                self.stats.skipped_unlabelled,
                self.stats.evicted_over_cap,
            )

    def _evict_over_cap(self, buffer: EventChunk) -> EventChunk:
        # rank each event among the events of its class from the newest backwards
        labels = getattr(buffer, self.label)
        order = np.argsort(labels[::-1], kind="stable")
        sorted_labels = labels[::-1][order]
        starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        run_index = np.repeat(starts, np.diff(np.r_[starts, sorted_labels.size]))
        rank_from_newest = np.empty(labels.size, dtype=np.int64)
        rank_from_newest[order] = np.arange(labels.size) - run_index
        keep = rank_from_newest[::-1] < self.max_per_class
        evicted = int((~keep).sum())
        if evicted == 0:
            return buffer
        self.stats.evicted_over_cap += evicted
        return buffer.where(keep)

    def _draw(self, labels: np.ndarray) -> np.ndarray | None:
        """Return buffer indices of one balanced batch, or ``None`` when too few classes are ready."""
        classes, counts = np.unique(labels, return_counts=True)
        ready = classes[counts >= self.events_per_class]
        if ready.size < self.classes_per_batch:
            return None
        chosen = self.rng.choice(ready, size=self.classes_per_batch, replace=False)

        # among the chosen classes' events, sort by (class, random key) and take the first m of each
        candidates = np.flatnonzero(np.isin(labels, chosen))
        keys = self.rng.random(candidates.size)
        order = np.lexsort((keys, labels[candidates]))
        ordered = candidates[order]
        ordered_labels = labels[ordered]
        starts = np.flatnonzero(np.r_[True, ordered_labels[1:] != ordered_labels[:-1]])
        rank = np.arange(ordered.size) - np.repeat(starts, np.diff(np.r_[starts, ordered.size]))
        return np.sort(ordered[rank < self.events_per_class])
