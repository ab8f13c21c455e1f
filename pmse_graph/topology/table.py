"""Topology table: decay-tree classes ranked by event count, as TopoAna ranks them.

:class:`TopologyCounter` accumulates event counts per decay tree over chunks of
events in constant memory per class. :class:`TopologyTable` is the ranked result:
one row per decay tree with its final state, count and integer id (0 for the
most frequent tree). :meth:`TopologyTable.from_labels` also returns each event's
``tree_id`` and ``final_state_id``.

Ties in count are broken the way TopoAna breaks them: classes are numbered in
order of first appearance, then sorted by count with TopoAna's pairwise exchange
sort, which is not stable (see :func:`topoana_rank_order`).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from pmse_graph.config import atomic_write_text
from pmse_graph.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

TieOrder = Literal["topoana", "first_seen"]
"""Order of classes with equal counts: TopoAna's exchange sort, or first appearance (stable)."""

CSV_COLUMNS = ("id", "tree", "final_state", "count", "cumulative_count", "final_state_id", "first_seen")
"""Columns of ``topology.csv``. ``first_seen`` numbers classes in order of first appearance (TopoAna's iDcyTr)."""


def topoana_rank_order(counts: np.ndarray) -> np.ndarray:
    """Return the order in which TopoAna lists classes, given counts in first-seen order.

    TopoAna sorts with ``for i: for j > i: if a[i] < a[j]: swap(a[i], a[j])``. For a
    fixed ``i`` the swaps happen at the running maxima ("records") of ``a[i:]``: the
    values on that chain rotate by one place, and ``a[i]`` ends up holding the first
    maximum. This function applies that rotation per step with numpy, which gives
    the same permutation as the quadratic loop.

    Args:
        counts: event count per class, shape ``(num_classes,)``, in first-seen order.

    Returns:
        Indices into ``counts``, shape ``(num_classes,)``, most frequent first.
    """
    values = np.asarray(counts, dtype=np.int64).copy()
    order = np.arange(values.shape[0])
    if values.shape[0] < 2:
        return order
    smallest = values.min()
    for i in range(values.shape[0] - 1):
        first_max = i + int(np.argmax(values[i:]))
        if values[first_max] == smallest:
            break  # every remaining value is the minimum, so no swap is left
        if first_max == i:
            continue
        running = np.maximum.accumulate(values[i : first_max + 1])
        chain = np.concatenate(([i], i + 1 + np.flatnonzero(running[1:] > running[:-1])))
        values[chain] = np.roll(values[chain], 1)
        order[chain] = np.roll(order[chain], 1)
    return order


def check_tie_order(tie_order: str) -> None:
    """Raise :class:`ConfigError` unless ``tie_order`` is one of :data:`TieOrder`."""
    if tie_order not in get_args(TieOrder):
        raise ConfigError(f"Expected tie_order to be one of {list(get_args(TieOrder))} (got {tie_order!r})")


def rank_order(counts: np.ndarray, *, tie_order: TieOrder = "topoana") -> np.ndarray:
    """Return class indices most frequent first, given counts in first-seen order.

    Args:
        counts: event count per class, shape ``(num_classes,)``, in first-seen order.
        tie_order: ``"topoana"`` reproduces TopoAna's order. Its cost grows about
            quadratically with the number of classes above the minimum count.
            ``"first_seen"`` orders ties by first appearance in O(n log n).

    Raises:
        ConfigError: ``tie_order`` is not one of the two options.
    """
    check_tie_order(tie_order)
    if tie_order == "topoana":
        return topoana_rank_order(counts)
    return np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable")


@dataclass
class TopologyCounter:
    """Running event counts per decay tree and per final state, in first-seen order.

    Attributes:
        trees: decay trees in order of first appearance.
        tree_final_states: final state of each entry of ``trees``.
        tree_counts: events per entry of ``trees``.
        final_states: final states in order of first appearance.
        final_state_counts: events per entry of ``final_states``.
    """

    trees: list[str] = field(default_factory=list)
    tree_final_states: list[str] = field(default_factory=list)
    tree_counts: list[int] = field(default_factory=list)
    final_states: list[str] = field(default_factory=list)
    final_state_counts: list[int] = field(default_factory=list)
    _tree_slot: dict[str, int] = field(default_factory=dict, repr=False)
    _final_state_slot: dict[str, int] = field(default_factory=dict, repr=False)

    def add(self, tree: np.ndarray, final_state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count a chunk of events and return each event's first-seen tree and final-state slot.

        Args:
            tree: decay tree of each event, shape ``(num_events,)``.
            final_state: final state of each event, shape ``(num_events,)``.

        Raises:
            DataError: the arrays differ in length, or one tree comes with two final states.
        """
        tree = np.asarray(tree, dtype=object)
        final_state = np.asarray(final_state, dtype=object)
        if tree.shape != final_state.shape:
            raise DataError(f"Expected one final state per decay tree (got {final_state.shape[0]} for {tree.shape[0]} trees)")

        # pandas.factorize numbers values in order of appearance, as TopoAna does
        tree_codes, chunk_trees = pd.factorize(tree)
        state_codes, chunk_states = pd.factorize(final_state)
        lowest = np.full(len(chunk_trees), len(chunk_states), dtype=np.int64)
        highest = np.full(len(chunk_trees), -1, dtype=np.int64)
        np.minimum.at(lowest, tree_codes, state_codes)
        np.maximum.at(highest, tree_codes, state_codes)
        if (lowest != highest).any():
            code = int(np.flatnonzero(lowest != highest)[0])
            raise DataError(
                f"Decay tree {chunk_trees[code]!r} has two final states, so the labels are inconsistent: "
                f"{chunk_states[lowest[code]]!r} and {chunk_states[highest[code]]!r}"
            )
        first_event = np.full(len(chunk_trees), -1, dtype=np.int64)
        first_event[tree_codes[::-1]] = np.arange(len(tree_codes))[::-1]
        tree_slots = np.empty(len(chunk_trees), dtype=np.int64)
        for code, value in enumerate(chunk_trees):
            slot = self._tree_slot.get(value)
            state = final_state[first_event[code]]
            if slot is None:
                slot = len(self.trees)
                self._tree_slot[value] = slot
                self.trees.append(value)
                self.tree_final_states.append(state)
                self.tree_counts.append(0)
            elif self.tree_final_states[slot] != state:
                raise DataError(
                    f"Decay tree {value!r} has two final states, so the labels are inconsistent: "
                    f"{self.tree_final_states[slot]!r} and {state!r}"
                )
            tree_slots[code] = slot
        for code, count in enumerate(np.bincount(tree_codes, minlength=len(chunk_trees))):
            self.tree_counts[tree_slots[code]] += int(count)

        state_slots = np.empty(len(chunk_states), dtype=np.int64)
        for code, value in enumerate(chunk_states):
            slot = self._final_state_slot.setdefault(value, len(self.final_states))
            if slot == len(self.final_states):
                self.final_states.append(value)
                self.final_state_counts.append(0)
            state_slots[code] = slot
        for code, count in enumerate(np.bincount(state_codes, minlength=len(chunk_states))):
            self.final_state_counts[state_slots[code]] += int(count)
        return tree_slots[tree_codes], state_slots[state_codes]

    def final_state_slot(self, final_state: str) -> int:
        """Return the first-seen slot of a counted final state."""
        return self._final_state_slot[final_state]

    def to_table(self, *, tie_order: TieOrder = "topoana") -> TopologyTable:
        """Rank the classes counted so far.

        Args:
            tie_order: order of classes with equal counts, see :func:`rank_order`.
        """
        tree_order = rank_order(np.asarray(self.tree_counts, dtype=np.int64), tie_order=tie_order)
        state_order = rank_order(np.asarray(self.final_state_counts, dtype=np.int64), tie_order=tie_order)
        state_rank = np.empty(len(self.final_states), dtype=np.int64)
        state_rank[state_order] = np.arange(len(self.final_states))

        counts = np.asarray(self.tree_counts, dtype=np.int64)[tree_order]
        finals = [self.tree_final_states[slot] for slot in tree_order]
        frame = pd.DataFrame(
            {
                "id": np.arange(len(tree_order), dtype=np.int64),
                "tree": [self.trees[slot] for slot in tree_order],
                "final_state": finals,
                "count": counts,
                "cumulative_count": np.cumsum(counts),
                "final_state_id": np.asarray([state_rank[self._final_state_slot[state]] for state in finals], dtype=np.int64),
                "first_seen": tree_order.astype(np.int64),
            }
        )
        return TopologyTable(frame)


class TopologyTable:
    """Decay-tree classes ranked by event count.

    Attributes:
        tree_id: ranked tree id of each event when built by :meth:`from_labels`, else None.
        final_state_id: ranked final-state id of each event when built by
            :meth:`from_labels`, else None.
    """

    def __init__(
        self, frame: pd.DataFrame, *, tree_id: np.ndarray | None = None, final_state_id: np.ndarray | None = None
    ) -> None:
        missing = [column for column in CSV_COLUMNS if column not in frame.columns]
        if missing:
            raise DataError(f"Topology table lacks the columns {missing} (expected {list(CSV_COLUMNS)})")
        self._frame = frame.loc[:, list(CSV_COLUMNS)].reset_index(drop=True)
        self.tree_id = tree_id
        self.final_state_id = final_state_id

    @classmethod
    def from_labels(
        cls, tree: Iterable[str], final_state: Iterable[str], *, tie_order: TieOrder = "topoana"
    ) -> TopologyTable:
        """Rank the decay trees of a set of events and give each event its ids.

        Args:
            tree: decay tree of each event, shape ``(num_events,)``.
            final_state: final state of each event, shape ``(num_events,)``.
            tie_order: order of classes with equal counts, see :func:`rank_order`.
        """
        counter = TopologyCounter()
        tree_slot, state_slot = counter.add(np.asarray(tree, dtype=object), np.asarray(final_state, dtype=object))
        table = counter.to_table(tie_order=tie_order)
        frame = table._frame
        tree_rank = np.empty(len(frame), dtype=np.int64)
        tree_rank[frame["first_seen"].to_numpy()] = frame["id"].to_numpy()
        state_rank = np.empty(len(counter.final_states), dtype=np.int64)
        state_slots = [counter.final_state_slot(state) for state in frame["final_state"]]
        state_rank[state_slots] = frame["final_state_id"].to_numpy()
        table.tree_id = tree_rank[tree_slot].astype(np.int32)
        table.final_state_id = state_rank[state_slot].astype(np.int32)
        return table

    def __len__(self) -> int:
        return len(self._frame)

    @property
    def num_events(self) -> int:
        return int(self._frame["count"].sum())

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the table, one row per decay tree, most frequent first."""
        return self._frame.copy()

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the whole table to ``path`` atomically (temporary file, then rename)."""
        buffer = io.StringIO()
        self._frame.to_csv(buffer, index=False)
        atomic_write_text(path, buffer.getvalue())
        logger.info("Wrote %d decay trees (%d events) to %s", len(self), self.num_events, path)

    @classmethod
    def read_csv(cls, path: str | os.PathLike[str]) -> TopologyTable:
        """Read a table written by :meth:`write_csv`.

        Raises:
            DataError: the file is missing or lacks one of :data:`CSV_COLUMNS`.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"Topology table not found: {path}")
        frame = pd.read_csv(path, dtype={"tree": str, "final_state": str}, keep_default_na=False)
        try:
            return cls(frame)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from exc
