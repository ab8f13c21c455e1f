"""Stream ROOT files into :class:`EventChunk` objects, strictly and in bounded memory.

:func:`iterate_chunks` validates every file first, then reads each one with
``uproot``'s ``TTree.iterate`` in steps of ``step_size`` entries, so memory
depends on the step and not on the dataset. Every step becomes one columnar
chunk: the collections of an event are joined into one particle list, float,
double and integer branches become float32, sentinel values become missing
flags, and non-finite values raise (or drop their event, if so chosen).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Iterator, Literal

import awkward as ak
import numpy as np

from pmse_graph.data.chunk import EventChunk, counts_to_offsets
from pmse_graph.data.conditions import compute_conditions
from pmse_graph.data.labels import LabelMap, check_label_tables
from pmse_graph.data.momenta import build_momenta
from pmse_graph.data.schema import CONDITION_NAMES, Schema
from pmse_graph.data.validate import expand_files, open_tree, validate_files
from pmse_graph.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

NonFinitePolicy = Literal["error", "drop-event"]
NONFINITE_POLICIES = ("error", "drop-event")


@dataclass
class ReadStats:
    """Counts of what the reader did, for logs and the ``inspect`` command."""

    files: int = 0
    events_read: int = 0
    events_kept: int = 0
    dropped_empty: int = 0
    dropped_nonfinite: int = 0
    nonfinite_branches: dict[str, int] = field(default_factory=dict)
    first_invalid: dict[str, str] = field(default_factory=dict)

    def count_invalid(self, branch: str, values: int, where: str) -> None:
        """Count ``values`` invalid values of ``branch``; keep where the first one was (file, entry, track)."""
        self.nonfinite_branches[branch] = self.nonfinite_branches.get(branch, 0) + values
        self.first_invalid.setdefault(branch, where)

    def summary(self) -> str:
        """Return one line with every count."""
        return (
            f"{self.files} files, {self.events_read} events read, {self.events_kept} kept, "
            f"{self.dropped_empty} dropped with zero particles, {self.dropped_nonfinite} dropped for non-finite values"
        )


def _flatten(array: ak.Array, branch: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, counts) of a per-particle branch: jagged, or fixed-size per event."""
    layout = array.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data)
        values = np.asarray(layout.content.data)[offsets[0] : offsets[-1]]
        return values, np.diff(offsets)
    if isinstance(layout, ak.contents.RegularArray) and isinstance(layout.content, ak.contents.NumpyArray):
        size = layout.size
        values = np.asarray(layout.content.data)[: len(layout) * size]
        return values, np.full(len(layout), size, dtype=np.int64)
    if isinstance(layout, ak.contents.NumpyArray) and layout.data.ndim == 2:
        data = np.asarray(layout.data)
        return data.reshape(-1), np.full(data.shape[0], data.shape[1], dtype=np.int64)
    if isinstance(layout, ak.contents.NumpyArray) and layout.data.ndim == 1:
        raise DataError(f"{where}: branch '{branch}' has one value per event, expected one per particle (a jagged or fixed-size array). Map it under 'conditions' or 'labels' instead")
    try:
        return ak.to_numpy(ak.flatten(array, axis=1)), ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    except Exception as exc:
        raise DataError(f"{where}: branch '{branch}' has an unsupported layout ({array.type}); expected a flat list of numbers per event") from exc


@dataclass
class _RawStep:
    """One read step as flat arrays, before missing values and momenta are resolved."""

    values: dict[str, np.ndarray]
    counts: np.ndarray
    node_collection: np.ndarray


def _join_collections(arrays: ak.Array, schema: Schema, where: str, entry_start: int) -> _RawStep:
    """Merge the collections of each event into one particle list per event (collection order)."""
    per_collection = []
    for collection in schema.collections:
        branches = schema.branches_of(collection.name)
        counts = None
        first_branch = None
        values: dict[str, np.ndarray] = {}
        for feature_name, branch in branches.items():
            flat, branch_counts = _flatten(arrays[branch], branch, where)
            if counts is None:
                counts, first_branch = branch_counts, branch
            elif not np.array_equal(counts, branch_counts):
                event = int(np.flatnonzero(counts != branch_counts)[0])
                raise DataError(
                    f"{where}: branch '{branch}' has {branch_counts[event]} values at entry {entry_start + event} "
                    f"but branch '{first_branch}' has {counts[event]}; branches of one collection must have equal lengths"
                )
            values[feature_name] = flat
        per_collection.append((counts, values))

    total_counts = sum(counts for counts, _ in per_collection)
    if len(per_collection) == 1:
        counts, values = per_collection[0]
        return _RawStep(values=values, counts=counts, node_collection=np.zeros(int(counts.sum()), dtype=np.int8))

    # scatter each collection's particles to their place after the earlier collections of the same event
    offsets = counts_to_offsets(total_counts)
    num_nodes = int(offsets[-1])
    joined: dict[str, np.ndarray] = {}
    node_collection = np.zeros(num_nodes, dtype=np.int8)
    before = np.zeros(len(total_counts), dtype=np.int64)
    for index, (counts, values) in enumerate(per_collection):
        local_offsets = counts_to_offsets(counts)
        event_of = np.repeat(np.arange(len(counts)), counts)
        rank = np.arange(int(counts.sum())) - local_offsets[event_of]
        destination = offsets[event_of] + before[event_of] + rank
        node_collection[destination] = index
        for name, flat in values.items():
            if name not in joined:
                joined[name] = np.zeros(num_nodes, dtype=np.float64)
                joined[name + "\0absent"] = np.ones(num_nodes, dtype=bool)
            joined[name][destination] = flat
            joined[name + "\0absent"][destination] = False
        before += counts
    return _RawStep(values=joined, counts=total_counts, node_collection=node_collection)


def _nonfinite_events(step: _RawStep, offsets: np.ndarray, where: str, entry_start: int,
                      policy: NonFinitePolicy, stats: ReadStats) -> np.ndarray:
    """Return a per-event mask of events holding NaN or inf; raise under the 'error' policy."""
    bad_events = np.zeros(len(step.counts), dtype=bool)
    for name, flat in step.values.items():
        if "\0" in name or not np.issubdtype(flat.dtype, np.floating):
            continue
        bad = ~np.isfinite(flat)
        if not bad.any():
            continue
        node = int(np.flatnonzero(bad)[0])
        event = int(np.searchsorted(offsets, node, side="right") - 1)
        if policy == "error":
            raise DataError(
                f"{where}: feature '{name}' is {flat[node]} at entry {entry_start + event}, track {node - offsets[event]}. "
                "Fix the file, or set the non-finite policy to 'drop-event' to skip such events."
            )
        events = np.searchsorted(offsets, np.flatnonzero(bad), side="right") - 1
        bad_events[events] = True
        stats.count_invalid(name, int(bad.sum()), f"{where}, entry {entry_start + event}, track {node - offsets[event]}: {flat[node]}")
    return bad_events


def source_hash(source: str) -> int:
    """Return a stable 31-bit hash of a file's base name, the high half of event ids without an event branch.

    The base name (not the path or the position in the input list) keeps ids, and so
    the train/val/test split, the same when inputs are reordered, added or moved.
    """
    name = source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


class _PerEventReader:
    """Convert per-event branches (conditions, labels, event numbers) to int64, checking every value.

    Under the ``error`` policy, a NaN, an infinity, a fractional value or a value
    outside the allowed range raises a :class:`DataError` naming file, branch and
    entry. Under ``drop-event`` its event is marked in :attr:`bad_events` and counted.
    """

    def __init__(self, arrays: ak.Array, *, where: str, entry_start: int, policy: NonFinitePolicy,
                 stats: ReadStats) -> None:
        self.arrays, self.where, self.entry_start = arrays, where, entry_start
        self.policy, self.stats = policy, stats
        self.bad_events = np.zeros(len(arrays), dtype=bool)

    def integers(self, branch: str, *, minimum: int, maximum: int = (1 << 62)) -> np.ndarray:
        """Return ``branch`` as int64, shape ``(num_events,)``; invalid values become ``minimum``."""
        values = ak.to_numpy(self.arrays[branch])
        if values.ndim != 1:
            raise DataError(f"{self.where}: branch '{branch}' must hold one number per event (got type {self.arrays[branch].type})")
        if np.issubdtype(values.dtype, np.floating):
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(values) | (values != np.round(values)) | (values < minimum) | (values > maximum)
        elif np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_:
            bad = (values < minimum) | (values > maximum)
        else:
            raise DataError(f"{self.where}: branch '{branch}' has type {values.dtype}, expected numbers")
        if not bad.any():
            return values.astype(np.int64)
        event = int(np.flatnonzero(bad)[0])
        if self.policy == "error":
            raise DataError(
                f"{self.where}: branch '{branch}' is {values[event]} at entry {self.entry_start + event}; expected a "
                f"whole number in [{minimum}, {maximum}]. Fix the file, or set the non-finite policy to 'drop-event' "
                "to skip such events."
            )
        self.bad_events |= bad
        self.stats.count_invalid(branch, int(bad.sum()), f"{self.where}, entry {self.entry_start + event}: {values[event]}")
        return np.where(bad, minimum, values).astype(np.int64)


def _categories(flat: np.ndarray, missing: np.ndarray, categories: list[int], name: str, where: str,
                offsets: np.ndarray, entry_start: int) -> np.ndarray:
    """Map raw values to category indices; missing values get index ``len(categories)``."""
    allowed = np.asarray(sorted(categories), dtype=np.float64)
    order = np.argsort(np.asarray(categories))
    position = np.clip(np.searchsorted(allowed, flat), 0, len(allowed) - 1)
    known = allowed[position] == flat
    unknown = ~known & ~missing
    if unknown.any():
        node = int(np.flatnonzero(unknown)[0])
        event = int(np.searchsorted(offsets, node, side="right") - 1)
        raise DataError(
            f"{where}: categorical feature '{name}' is {flat[node]} at entry {entry_start + event}, track "
            f"{node - offsets[event]}; allowed values are {categories}. Add the value to the schema's categories."
        )
    index = order[position].astype(np.int64)
    index[missing] = len(categories)
    return index


def build_chunk(arrays: ak.Array, schema: Schema, *, source: str, source_index: int, entry_start: int,
                nonfinite: NonFinitePolicy = "error", drop_empty: bool = True, stats: ReadStats | None = None,
                label_map: LabelMap | None = None) -> EventChunk:
    """Turn one step of branch arrays (as returned by ``TTree.iterate``) into an :class:`EventChunk`.

    Args:
        arrays: awkward record array with every branch of ``schema.all_branches()``.
        schema: the event schema.
        source: file path, for messages.
        source_index: index of the file in the input list, kept for callers. Event ids without an
            event branch come from :func:`source_hash` of the file name and the entry.
        entry_start: tree entry of the first event in ``arrays``.
        nonfinite: ``"error"`` (default) raises on NaN or inf; ``"drop-event"`` drops and counts those events.
        drop_empty: drop events with zero particles and count them (default True).
        stats: counters to update; a fresh :class:`ReadStats` when None.
        label_map: merged class ids of several ``simulate`` runs; None keeps the stored ids.
    """
    stats = stats if stats is not None else ReadStats()
    where = f"{source} (tree '{schema.tree}')"
    num_events = len(arrays)
    entry = np.arange(entry_start, entry_start + num_events, dtype=np.int64)
    step = _join_collections(arrays, schema, where, entry_start)
    offsets = counts_to_offsets(step.counts)
    bad_events = _nonfinite_events(step, offsets, where, entry_start, nonfinite, stats)

    # resolve sentinels and absent branches into missing masks, raw values into float32
    raw: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    num_nodes = int(offsets[-1])
    for feature in schema.features:
        flat = step.values.get(feature.name)
        absent = step.values.get(feature.name + "\0absent", np.zeros(num_nodes, dtype=bool))
        if flat is None:
            flat, absent = np.zeros(num_nodes), np.ones(num_nodes, dtype=bool)
        flat = np.where(np.isfinite(flat), flat, 0.0) if bad_events.any() else flat
        is_missing = absent.copy()
        if schema.missing_value is not None:
            is_missing |= flat == schema.missing_value
        if feature.fill is not None:
            flat = np.where(absent, feature.fill, flat)
            is_missing &= ~absent
        raw[feature.name] = np.where(is_missing, 0.0, flat).astype(np.float32)
        missing[feature.name] = is_missing

    # column-major (a transposed view): a row-major copy of a whole chunk costs more than the
    # row gathers of select(), which return row-major batches anyway
    if schema.continuous_names:
        continuous = np.stack([raw[name] for name in schema.continuous_names]).T
        missing_matrix = np.stack([missing[name] for name in schema.continuous_names]).T
    else:
        continuous = np.zeros((num_nodes, 0), dtype=np.float32)
        missing_matrix = np.zeros((num_nodes, 0), dtype=bool)
    present = np.zeros((num_nodes, len(schema.flag_groups)), dtype=bool)
    for column, group in enumerate(schema.flag_groups):
        members = [i for i, name in enumerate(schema.continuous_names) if schema.feature(name).group == group]
        present[:, column] = ~missing_matrix[:, members].all(axis=1)
    categorical = np.zeros((num_nodes, len(schema.categorical_names)), dtype=np.int64)
    for column, name in enumerate(schema.categorical_names):
        categorical[:, column] = _categories(raw[name].astype(np.float64), missing[name], schema.feature(name).categories,
                                             name, where, offsets, entry_start)

    p4, shower, has_shower = build_momenta(raw, missing, schema)
    if len(schema.conditions) == len(CONDITION_NAMES):
        cond = np.zeros((num_events, len(CONDITION_NAMES)), dtype=np.int64)
    else:
        cond = compute_conditions(raw, missing, p4, has_shower, offsets, schema)
    per_event = _PerEventReader(arrays, where=where, entry_start=entry_start, policy=nonfinite, stats=stats)
    for column, name in enumerate(CONDITION_NAMES):
        branch = schema.conditions.get(name)
        if branch is not None:
            cond[:, column] = per_event.integers(branch, minimum=0)

    labels = {}
    for key in ("tree", "final_state"):
        branch = schema.labels.get(key)
        labels[key] = per_event.integers(branch, minimum=-1) if branch else np.full(num_events, -1, dtype=np.int64)
    if label_map is not None:
        for key in ("tree", "final_state"):
            if schema.labels.get(key):
                labels[key] = label_map.apply(labels[key], source=source, kind=key)

    if schema.event_number is not None:
        event_number = per_event.integers(schema.event_number, minimum=0, maximum=(1 << 32) - 1)
        run = (per_event.integers(schema.run_number, minimum=-(1 << 30), maximum=(1 << 30) - 1)
               if schema.run_number else np.zeros(num_events, np.int64))
        event_id = run * (1 << 32) + event_number
    else:
        event_id = (np.int64(source_hash(source)) << np.int64(32)) | entry
    bad_events |= per_event.bad_events

    chunk = EventChunk(
        sources=[source], source_index=np.full(num_events, 0, dtype=np.int32), entry=entry, event_id=event_id,
        offsets=offsets, continuous=continuous, missing=missing_matrix, present=present, categorical=categorical,
        p4=p4, shower=shower, has_shower=has_shower, cond=cond, y=labels["tree"], y_fs=labels["final_state"],
    )

    # drop events by policy, counting each reason once per event
    empty = (step.counts == 0) if drop_empty else np.zeros(num_events, dtype=bool)
    stats.events_read += num_events
    stats.dropped_nonfinite += int(bad_events.sum())
    stats.dropped_empty += int((empty & ~bad_events).sum())
    keep = ~(empty | bad_events)
    if bad_events.any():
        logger.warning("%s: dropped %d events with non-finite values (entries %s...)", where, int(bad_events.sum()),
                       entry[bad_events][:5].tolist())
    if not keep.all():
        chunk = chunk.where(keep)
    stats.events_kept += chunk.num_events
    return chunk


def iterate_chunks(files, schema: Schema, *, step_size: int = 100_000, nonfinite: NonFinitePolicy = "error",
                   drop_empty: bool = True, validate: bool = True, entry_start: int | None = None,
                   entry_stop: int | None = None, first_source_index: int = 0,
                   stats: ReadStats | None = None, label_map: LabelMap | None = None) -> Iterator[EventChunk]:
    """Read events from ROOT files in chunks of at most ``step_size`` entries.

    Args:
        files: a path, glob or URL, or a list of them; read in the given order.
        schema: the event schema.
        step_size: entries per read step (default 100,000); bounds the memory in use.
        nonfinite: ``"error"`` (default) raises on NaN or inf naming file, branch, entry and track;
            ``"drop-event"`` drops such events and counts them in ``stats``.
        drop_empty: drop and count events with zero particles (default True).
        validate: check every file against the schema before reading (default True).
        entry_start: first entry to read in each file (default: the first).
        entry_stop: entry after the last one to read in each file (default: the end).
        first_source_index: index of the first file in the full input list (default 0).
        stats: counters updated while reading; pass one to see them afterwards.
        label_map: merged class ids of several ``simulate`` runs (:class:`LabelMap`). Without one,
            stored ids are kept, and inputs whose topology tables conflict raise.

    Yields:
        One :class:`EventChunk` per read step; steps whose events were all dropped are skipped.

    Raises:
        DataError: a file does not match the schema, cannot be read, or contains invalid values.
    """
    if nonfinite not in NONFINITE_POLICIES:
        raise ConfigError(f"Invalid non-finite policy '{nonfinite}': expected one of {NONFINITE_POLICIES}")
    if step_size < 1:
        raise ConfigError(f"step_size must be a positive number of entries (got {step_size})")
    stats = stats if stats is not None else ReadStats()
    paths = expand_files(files)
    if validate:
        validate_files(paths, schema)
    if label_map is None and schema.labels:
        check_label_tables(paths)
    branches = schema.all_branches()
    for source_index, path in enumerate(paths):
        handle, tree = open_tree(path, schema.tree)
        stats.files += 1
        with handle:
            iterator = tree.iterate(branches, step_size=step_size, library="ak", report=True,
                                    entry_start=entry_start, entry_stop=entry_stop)
            while True:
                try:
                    arrays, report = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:  # decompression and deserialisation errors of damaged files
                    raise DataError(f"Cannot read {path} (tree '{schema.tree}'): {type(exc).__name__}: {exc}. "
                                    "The file may be truncated or damaged.") from exc
                chunk = build_chunk(arrays, schema, source=path, source_index=first_source_index + source_index,
                                    entry_start=int(report.tree_entry_start), nonfinite=nonfinite,
                                    drop_empty=drop_empty, stats=stats, label_map=label_map)
                if chunk.num_events:
                    yield chunk
    logger.info("read %s", stats.summary())
