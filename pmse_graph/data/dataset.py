"""A streaming, sharded, seeded dataset of graph batches for training and evaluation.

:class:`EventDataset` is a torch ``IterableDataset`` that yields ready-made PyG
batches. Every (DDP rank, DataLoader worker) pair, a shard, reads its own
contiguous share of the entries of all files, equal to within one entry. The
share is cut into read units of at most ``step_size`` entries, and each epoch
permutes a shard's units with a seed (:meth:`EventDataset.shard_ranges`). Events enter a shuffle buffer, and batches of
``batch_size`` events leave it. The train/val/test split comes from a hash of
each event's id, so it does not depend on file order, chunking or sharding.
"""

from __future__ import annotations

import logging
from typing import Iterator, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torch_geometric.data import Batch

from pmse_graph.config import StrictModel
from pmse_graph.data.chunk import EventChunk
from pmse_graph.data.graphs import GRAPH_KINDS, MAX_COMPLETE_NODES, GraphKind, build_batch
from pmse_graph.data.labels import LabelMap, check_label_tables
from pmse_graph.data.reader import NONFINITE_POLICIES, NonFinitePolicy, iterate_chunks
from pmse_graph.data.schema import Schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.data.validate import expand_files, validate_files
from pmse_graph.errors import ConfigError

logger = logging.getLogger(__name__)

Split = Literal["train", "val", "test", "all"]
SPLITS = ("train", "val", "test", "all")


class DataConfig(StrictModel):
    """Settings of the data path, as stored in a run's configuration file."""

    files: list[str]
    event_schema: str = "besiii"
    step_size: int = 50_000
    batch_size: int = 256
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    shuffle_buffer: int = 10_000
    seed: int = 0
    graph: Literal["complete", "knn"] = "complete"
    knn_k: int = 16
    max_complete_nodes: int | None = MAX_COMPLETE_NODES
    nonfinite: Literal["error", "drop-event"] = "error"
    num_workers: int = 0
    label_map: str | None = None
    """Path of a ``label_map.json`` (:class:`LabelMap`) that merges the class ids of several simulate runs."""


def hash_unit_interval(event_id: np.ndarray) -> np.ndarray:
    """Map event ids to reproducible pseudo-random numbers in [0, 1) with the splitmix64 finaliser."""
    value = np.asarray(event_id).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    value = (value ^ (value >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    value = (value ^ (value >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    value = value ^ (value >> np.uint64(31))
    return (value >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split_mask(event_id: np.ndarray, split: Split, fractions: tuple[float, float, float]) -> np.ndarray:
    """Return True for the events of ``event_id`` that belong to ``split``."""
    if split not in SPLITS:
        raise ConfigError(f"Invalid split '{split}': expected one of {SPLITS}")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1 (got {fractions})")
    if split == "all":
        return np.ones(len(event_id), dtype=bool)
    u = hash_unit_interval(event_id)
    train_end, val_end = fractions[0], fractions[0] + fractions[1]
    if split == "train":
        return u < train_end
    if split == "val":
        return (u >= train_end) & (u < val_end)
    return u >= val_end


def shard_info() -> tuple[int, int]:
    """Return (shard index, number of shards) over DDP ranks times DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker = get_worker_info()
    worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
    return rank * num_workers + worker_id, world * num_workers


class EventDataset(IterableDataset):
    """Stream graph batches of one split from ROOT files.

    Args:
        files: paths, globs or URLs of the ntuples.
        schema: the event schema.
        standardizer: fitted standardiser for the schema's continuous features.
        split: ``"train"`` (default), ``"val"``, ``"test"`` or ``"all"``.
        batch_size: events per batch (default 256).
        split_fractions: train, val and test fractions (default 0.8, 0.1, 0.1).
        shuffle_buffer: events held for shuffling; 0 keeps the file and entry order (default 10,000).
        seed: seed of the unit order and the shuffle; the same seed, epoch and
            shard layout give the same batches (default 0).
        step_size: entries per read unit (default 50,000).
        graph: ``"complete"`` (default) or ``"knn"`` edges, see :func:`build_batch`.
        k: neighbours per particle for ``graph="knn"`` and for large events (default 16).
        max_complete_nodes: events with more particles get kNN edges (default 64; None: never).
        nonfinite: policy for NaN or inf values, ``"error"`` (default) or ``"drop-event"``.
        drop_last: drop the last, smaller batch of each shard (default False).
        label_map: merged class ids of several ``simulate`` runs; None keeps the stored ids
            (inputs whose topology tables conflict then raise).
    """

    def __init__(self, files, schema: Schema, standardizer: Standardizer, *, split: Split = "train",
                 batch_size: int = 256, split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 shuffle_buffer: int = 10_000, seed: int = 0, step_size: int = 50_000,
                 graph: GraphKind = "complete", k: int = 16,
                 max_complete_nodes: int | None = MAX_COMPLETE_NODES, nonfinite: NonFinitePolicy = "error",
                 drop_last: bool = False, label_map: LabelMap | None = None) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ConfigError(f"Invalid split '{split}': expected one of {SPLITS}")
        if graph not in GRAPH_KINDS:
            raise ConfigError(f"Invalid graph kind '{graph}': expected one of {GRAPH_KINDS}")
        if nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(f"Invalid non-finite policy '{nonfinite}': expected one of {NONFINITE_POLICIES}")
        if batch_size < 1 or step_size < 1 or shuffle_buffer < 0:
            raise ConfigError(f"batch_size and step_size must be positive and shuffle_buffer non-negative "
                              f"(got {batch_size}, {step_size}, {shuffle_buffer})")
        split_mask(np.zeros(0, dtype=np.int64), split, split_fractions)
        standardizer.check_schema(schema)
        self.files = expand_files(files)
        self.schema, self.standardizer = schema, standardizer
        self.split, self.batch_size, self.split_fractions = split, batch_size, tuple(split_fractions)
        self.shuffle_buffer, self.seed, self.step_size = shuffle_buffer, seed, step_size
        self.graph, self.k, self.nonfinite, self.drop_last = graph, k, nonfinite, drop_last
        self.max_complete_nodes = max_complete_nodes
        self.epoch = 0
        self.label_map = label_map
        reports = validate_files(self.files, schema)
        if label_map is None and schema.labels:
            check_label_tables(self.files)
        self.num_entries = [report.num_entries for report in reports]
        self.units = [(index, start, min(start + step_size, report.num_entries))
                      for index, report in enumerate(reports) for start in range(0, report.num_entries, step_size)]

    @classmethod
    def from_config(cls, config: DataConfig, schema: Schema, standardizer: Standardizer, *,
                    split: Split = "train") -> "EventDataset":
        """Create the dataset of ``split`` from a :class:`DataConfig`."""
        return cls(config.files, schema, standardizer, split=split, batch_size=config.batch_size,
                   split_fractions=config.split_fractions, shuffle_buffer=config.shuffle_buffer, seed=config.seed,
                   step_size=config.step_size, graph=config.graph, k=config.knn_k,
                   max_complete_nodes=config.max_complete_nodes, nonfinite=config.nonfinite,
                   label_map=LabelMap.load(config.label_map) if config.label_map else None)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch, which changes the unit order and the shuffle."""
        self.epoch = int(epoch)

    def shard_ranges(self, *, shard: int, num_shards: int, epoch: int | None = None) -> list[tuple[int, int, int]]:
        """Return the read units of one shard as ``(file index, entry start, entry stop)``.

        The entries of all files, in file order, are split into ``num_shards``
        contiguous parts whose sizes differ by at most one entry, so one file serves
        every rank and worker. Each part is cut into units of at most ``step_size``
        entries, in an order permuted with the seed and epoch (file order when
        ``shuffle_buffer`` is 0).

        Args:
            shard: index of this shard, ``rank * num_workers + worker``.
            num_shards: number of shards, ``world_size * num_workers``.
            epoch: epoch of the permutation (default: the one set by :meth:`set_epoch`).
        """
        if num_shards < 1 or not 0 <= shard < num_shards:
            raise ConfigError(f"shard must be in [0, num_shards) with num_shards >= 1 (got {shard}, {num_shards})")
        total = sum(self.num_entries)
        first, last = total * shard // num_shards, total * (shard + 1) // num_shards
        if total < num_shards:
            logger.warning("%d entries in all for %d shards (ranks x workers): some shards read no events",
                           total, num_shards)
        units: list[tuple[int, int, int]] = []
        file_start = 0
        for file_index, entries in enumerate(self.num_entries):
            low, high = max(first, file_start), min(last, file_start + entries)
            for start in range(low, high, self.step_size):
                units.append((file_index, start - file_start, min(start + self.step_size, high) - file_start))
            file_start += entries
        if self.shuffle_buffer and units:
            epoch = self.epoch if epoch is None else int(epoch)
            order = np.random.default_rng([self.seed, epoch, shard]).permutation(len(units))
            units = [units[i] for i in order]
        return units

    def read_units(self, units: list[tuple[int, int, int]]) -> Iterator[EventChunk]:
        """Read ``units`` (as from :meth:`shard_ranges`) and yield the chunks of this dataset's split."""
        for file_index, start, stop in units:
            for chunk in iterate_chunks(self.files[file_index], self.schema, step_size=stop - start,
                                        nonfinite=self.nonfinite, validate=False, entry_start=start,
                                        entry_stop=stop, first_source_index=file_index, label_map=self.label_map):
                keep = split_mask(chunk.event_id, self.split, self.split_fractions)
                if keep.any():
                    yield chunk if keep.all() else chunk.where(keep)

    def _batches(self, chunk: EventChunk) -> Iterator[Batch]:
        for start in range(0, chunk.num_events, self.batch_size):
            part = chunk.slice(start, start + self.batch_size)
            if part.num_events < self.batch_size and self.drop_last:
                return
            yield build_batch(part, self.standardizer, schema=self.schema, graph=self.graph, k=self.k,
                              max_complete_nodes=self.max_complete_nodes)

    def __iter__(self) -> Iterator[Batch]:
        shard, num_shards = shard_info()
        units = self.shard_ranges(shard=shard, num_shards=num_shards)
        rng = np.random.default_rng([self.seed, self.epoch, shard])
        if self.shuffle_buffer == 0:
            pending: EventChunk | None = None
            for chunk in self.read_units(units):
                pending = chunk if pending is None else EventChunk.concatenate([pending, chunk])
                full = pending.num_events - pending.num_events % self.batch_size
                if full:
                    yield from self._batches(pending.slice(0, full))
                    pending = pending.slice(full, pending.num_events)
            if pending is not None and pending.num_events:
                yield from self._batches(pending)
            return

        # shuffle buffer: once full, permute it and hand out half of it in whole batches
        buffer: list[EventChunk] = []
        buffered = 0
        for chunk in self.read_units(units):
            buffer.append(chunk)
            buffered += chunk.num_events
            if buffered < self.shuffle_buffer + self.batch_size:
                continue
            pool = EventChunk.concatenate(buffer).select(rng.permutation(buffered))
            release = max(self.batch_size, (buffered - self.shuffle_buffer // 2) // self.batch_size * self.batch_size)
            yield from self._batches(pool.slice(0, release))
            buffer = [pool.slice(release, buffered)]
            buffered -= release
        if buffered:
            pool = EventChunk.concatenate(buffer).select(rng.permutation(buffered))
            yield from self._batches(pool)


def make_loader(dataset: EventDataset, *, num_workers: int = 0) -> DataLoader:
    """Wrap ``dataset`` in a DataLoader that passes its ready-made batches through unchanged."""
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, persistent_workers=False)
