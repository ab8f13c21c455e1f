"""One class-id space for events from several ``simulate`` runs.

``simulate`` ranks decay trees by frequency within one run, so id 0 of one run
can be another tree in the next. Each run folder stores the ranking as
``topology.csv``. :class:`LabelMap` merges these tables by tree string (counts
summed, classes re-ranked most frequent first, ties by tree string) and turns
each run's ids into merged ids with one lookup array per table.

:func:`check_label_tables` is the guard used when no map is given: inputs whose
tables give one id to different trees raise an error naming both tables.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmse_graph.config import atomic_write_text
from pmse_graph.errors import DataError

TOPOLOGY_FILE = "topology.csv"
"""Name of the topology table a ``simulate`` run writes beside its ROOT files."""

LABEL_MAP_FILE = "label_map.json"
"""Name of the stored label map in a run folder."""


def _local_path(source: str) -> Path | None:
    """Return the local path of ``source`` (plain path or ``file://`` URL), None for remote URLs."""
    if source.startswith("file://"):
        return Path(source[len("file://"):])
    if "://" in source:
        return None
    return Path(source)


def table_path_of(source: str) -> Path | None:
    """Return the ``topology.csv`` beside ``source``, or None when there is none."""
    local = _local_path(source)
    if local is None:
        return None
    candidate = local.resolve().parent / TOPOLOGY_FILE
    return candidate if candidate.is_file() else None


def _read_table(path: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Return (tree, final_state, count, id, final_state_id) columns of one topology table."""
    from pmse_graph.topology import TopologyTable

    frame = TopologyTable.read_csv(path).to_frame()
    return (frame["tree"].tolist(), frame["final_state"].tolist(), frame["count"].to_numpy(np.int64),
            frame["id"].to_numpy(np.int64), frame["final_state_id"].to_numpy(np.int64))


def check_label_tables(sources: list[str]) -> None:
    """Raise when the topology tables beside ``sources`` give the same class id to different trees.

    Raises:
        DataError: naming both tables, one conflicting id and its two trees, and the fix.
    """
    tables = sorted({path for path in (table_path_of(source) for source in sources) if path is not None})
    if len(tables) < 2:
        return
    first_table: dict[int, tuple[str, Path]] = {}
    for path in tables:
        trees, _, _, ids, _ = _read_table(path)
        for class_id, tree in zip(ids.tolist(), trees):
            seen = first_table.setdefault(class_id, (tree, path))
            if seen[0] != tree:
                raise DataError(
                    f"Class ids of different simulate runs conflict: id {class_id} is '{seen[0]}' in {seen[1]} but "
                    f"'{tree}' in {path}. Build a LabelMap from the inputs (LabelMap.from_sources) and pass it as "
                    "label_map, or read each run separately."
                )


@dataclass
class LabelMap:
    """Merged decay-tree and final-state ids of several topology tables.

    Attributes:
        trees: merged tree strings; the index is the merged id, most frequent first.
        final_states: merged final-state strings; the index is the merged final-state id.
        tree_lookup: table path -> array mapping that table's tree id to the merged id.
        final_state_lookup: table path -> array mapping that table's final-state id to the merged id.
    """

    trees: list[str]
    final_states: list[str]
    tree_lookup: dict[str, np.ndarray]
    final_state_lookup: dict[str, np.ndarray]

    @classmethod
    def from_tables(cls, tables: list[str | os.PathLike[str]]) -> "LabelMap":
        """Merge topology tables by tree string, summing counts and re-ranking the classes."""
        if not tables:
            raise DataError("A label map needs at least one topology table")
        columns = {str(Path(path).resolve()): _read_table(Path(path)) for path in tables}
        tree_count: dict[str, int] = {}
        state_count: dict[str, int] = {}
        for trees, states, counts, _, _ in columns.values():
            for tree, state, count in zip(trees, states, counts.tolist()):
                tree_count[tree] = tree_count.get(tree, 0) + count
                state_count[state] = state_count.get(state, 0) + count
        merged_trees = sorted(tree_count, key=lambda tree: (-tree_count[tree], tree))
        merged_states = sorted(state_count, key=lambda state: (-state_count[state], state))
        tree_index = {tree: index for index, tree in enumerate(merged_trees)}
        state_index = {state: index for index, state in enumerate(merged_states)}
        tree_lookup, state_lookup = {}, {}
        for path, (trees, states, _, ids, state_ids) in columns.items():
            tree_lookup[path] = _lookup(ids, [tree_index[tree] for tree in trees])
            state_lookup[path] = _lookup(state_ids, [state_index[state] for state in states])
        return cls(trees=merged_trees, final_states=merged_states, tree_lookup=tree_lookup, final_state_lookup=state_lookup)

    @classmethod
    def from_sources(cls, sources: list[str]) -> "LabelMap":
        """Merge the topology tables beside ``sources`` (ROOT file paths).

        Raises:
            DataError: a local source has no ``topology.csv`` beside it.
        """
        tables = []
        for source in sources:
            path = table_path_of(source)
            if path is None:
                raise DataError(f"No {TOPOLOGY_FILE} beside {source}: a label map needs the topology table of every run")
            tables.append(path)
        return cls.from_tables(sorted(set(tables)))

    def apply(self, ids: np.ndarray, *, source: str, kind: str = "tree") -> np.ndarray:
        """Return the merged ids of ``ids`` read from ``source``, shape as ``ids``; -1 stays -1.

        Args:
            ids: class ids as stored in the file.
            source: the ROOT file the ids come from; its folder's table is used.
            kind: ``"tree"`` (default) or ``"final_state"``.

        Raises:
            DataError: the source's table is not part of the map, or an id is not in it.
        """
        if kind not in ("tree", "final_state"):
            raise DataError(f"Invalid label kind '{kind}': expected 'tree' or 'final_state'")
        table = table_path_of(source)
        lookups = self.tree_lookup if kind == "tree" else self.final_state_lookup
        lookup = lookups.get(str(table)) if table is not None else None
        if lookup is None:
            raise DataError(f"{source}: its topology table {table} is not part of the label map (tables: {sorted(lookups)})")
        valid = ids >= 0
        unknown = valid & ((ids >= len(lookup)) | (lookup[np.clip(ids, 0, len(lookup) - 1)] < 0))
        if unknown.any():
            raise DataError(f"{source}: {kind} id {int(ids[unknown][0])} is not in {table}; the file and its table disagree")
        return np.where(valid, lookup[np.clip(ids, 0, len(lookup) - 1)], -1)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the map as JSON, atomically."""
        payload = {
            "trees": self.trees,
            "final_states": self.final_states,
            "tree_lookup": {key: value.tolist() for key, value in self.tree_lookup.items()},
            "final_state_lookup": {key: value.tolist() for key, value in self.final_state_lookup.items()},
        }
        atomic_write_text(path, json.dumps(payload, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "LabelMap":
        """Read a map written by :meth:`save`."""
        try:
            payload = json.loads(Path(path).read_text())
            return cls(
                trees=list(payload["trees"]),
                final_states=list(payload["final_states"]),
                tree_lookup={key: np.asarray(value, dtype=np.int64) for key, value in payload["tree_lookup"].items()},
                final_state_lookup={key: np.asarray(value, dtype=np.int64)
                                    for key, value in payload["final_state_lookup"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"Cannot read the label map {path}: {exc}") from exc


def _lookup(old_ids: np.ndarray, new_ids: list[int]) -> np.ndarray:
    """Return an array ``a`` with ``a[old] = new``; ids absent from the table map to -1."""
    size = int(old_ids.max()) + 1 if len(old_ids) else 0
    lookup = np.full(size, -1, dtype=np.int64)
    lookup[old_ids] = np.asarray(new_ids, dtype=np.int64)
    return lookup
