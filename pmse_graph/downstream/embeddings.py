"""On-disk format of event embeddings: a writer that shards them and a store that reads them back.

An embedding folder contains ``index.json`` and two files per shard. The ``.npy`` file stores the
float32 vectors of shape ``(n, dim)``. The parquet file has one row per event with the columns
``event_id`` (int64), ``y`` (decay-tree class id, -1 when unknown), ``y_fs`` (final-state class
id, -1 when unknown) and optionally ``split`` (string). ``index.json`` contains the format version, ``dim``,
``dtype``, ``num_events``, the shard list with event counts, and free ``metadata`` (the embed
command stores the run folder there). The writer saves every file through a temporary name and
a rename and writes the index last, so a folder without ``index.json`` is an unfinished write.

:meth:`EmbeddingStore.open` also accepts a plain ``.npy`` file (with an optional parquet file of
the same stem beside it), and :meth:`EmbeddingStore.from_array` wraps an in-memory array, so
library callers can cluster any ``(N, D)`` array.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pmse_graph.atomic import atomic_path
from pmse_graph.config import atomic_write_text
from pmse_graph.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_NAME = "index.json"
LABEL_COLUMNS = ("event_id", "y", "y_fs")
# ids of non-finite rows listed in an error message; the rest are counted
MAX_IDS_IN_MESSAGE = 10


def nonfinite_rows(vectors: np.ndarray) -> np.ndarray:
    """Return the row indices of ``vectors`` that contain NaN or infinity."""
    return np.flatnonzero(~np.isfinite(vectors).all(axis=1))


def describe_event_ids(event_id: np.ndarray) -> str:
    """Format up to ``MAX_IDS_IN_MESSAGE`` event ids for a message, with the count of the rest."""
    shown = ", ".join(str(int(value)) for value in event_id[:MAX_IDS_IN_MESSAGE])
    rest = len(event_id) - MAX_IDS_IN_MESSAGE
    return shown + (f" and {rest} more" if rest > 0 else "")


def as_float32_matrix(vectors: Any, *, dim: int | None = None, source: str = "embeddings") -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 ``(n, dim)`` array, checking its shape.

    Float64 values beyond the float32 range become infinity here, so callers that check
    finiteness after this call also catch them.
    """
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise DataError(f"{source}: expected a 2-d array of shape (events, dim) (got shape {array.shape})")
    if dim is not None and array.shape[1] != dim:
        raise DataError(f"{source}: expected vectors of dimension {dim} (got shape {array.shape})")
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{source}: expected a numeric array (got dtype {array.dtype})")
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def _label_column(values: Any, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    column = np.asarray(values)
    if column.shape != (n,):
        raise DataError(f"Expected '{name}' of shape ({n},) to match the vectors (got shape {column.shape})")
    if not np.issubdtype(column.dtype, np.integer):
        raise DataError(f"Expected integer '{name}' values (got dtype {column.dtype})")
    return column.astype(np.int64, copy=False)


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` through a temporary file and a rename."""
    with atomic_path(path) as tmp_path, open(tmp_path, "wb") as stream:
        np.save(stream, array)


def save_parquet_atomic(path: Path, frame: pd.DataFrame) -> None:
    """Save ``frame`` as parquet (no index) through a temporary file and a rename."""
    with atomic_path(path) as tmp_path:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path)


def existing_embedding_files(out_dir: str | os.PathLike[str], *, overwrite: bool) -> list[Path]:
    """Return the shard and index files already in ``out_dir`` (none when it does not exist).

    Raises:
        DataError: there are such files and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    existing = sorted(out_dir.glob("shard-*")) + sorted(out_dir.glob(INDEX_NAME))
    if existing and not overwrite:
        raise DataError(f"{out_dir} already contains embeddings ({existing[0].name}); choose another folder or replace them with --overwrite (overwrite=True in Python)")
    return existing


class EmbeddingWriter:
    """Stream event embeddings to a sharded folder.

    Use it as a context manager: chunks of any size go to :meth:`write`, full shards are saved as
    they fill, and leaving the block saves the last shard and then ``index.json``. When the block
    raises, the index is not written, so the folder does not open as a finished store.

    Args:
        out_dir: Output folder, created when missing.
        dim: Embedding dimension.
        shard_size: Events per shard file (default 262,144, 128 MiB at dim 128).
        metadata: JSON-serialisable facts stored in the index, for example ``{"run": "runs/a"}``.
        overwrite: Replace an existing store in ``out_dir`` (default False raises instead).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        dim: int,
        *,
        shard_size: int = 262_144,
        metadata: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if dim < 1:
            raise ConfigError(f"Expected an embedding dimension >= 1 (got {dim})")
        if shard_size < 1:
            raise ConfigError(f"Expected shard_size >= 1 (got {shard_size})")
        self.out_dir = Path(out_dir)
        self.dim = int(dim)
        self.shard_size = int(shard_size)
        self.metadata = dict(metadata or {})
        json.dumps(self.metadata)  # fail now, not after hours of inference

        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in existing_embedding_files(self.out_dir, overwrite=overwrite):
            path.unlink()

        self._vectors: list[np.ndarray] = []
        self._frames: list[pd.DataFrame] = []
        self._buffered = 0
        self._shards: list[dict[str, Any]] = []
        self._num_events = 0
        self._has_split: bool | None = None
        self._closed = False

    def write(self, vectors: Any, event_id: Any, y: Any = None, y_fs: Any = None, split: Any = None) -> None:
        """Append a chunk of events.

        Args:
            vectors: ``(n, dim)`` embeddings; float64 is converted to float32.
            event_id: ``(n,)`` integer event ids.
            y: ``(n,)`` decay-tree class ids, -1 when unknown (default all -1).
            y_fs: ``(n,)`` final-state class ids, -1 when unknown (default all -1).
            split: optional ``(n,)`` split names; give it with every chunk or with none.

        Raises:
            DataError: on a wrong shape or on NaN or infinite vectors, naming their event ids.
        """
        if self._closed:
            raise DataError(f"The embedding writer for {self.out_dir} is already closed")
        matrix = as_float32_matrix(vectors, dim=self.dim, source=f"embeddings written to {self.out_dir}")
        n = len(matrix)
        ids = _label_column(event_id, n, "event_id")
        bad = nonfinite_rows(matrix)
        if len(bad):
            raise DataError(f"{len(bad)} embeddings written to {self.out_dir} are NaN or infinite, event ids {describe_event_ids(ids[bad])}")

        frame = pd.DataFrame({"event_id": ids, "y": _label_column(y, n, "y"), "y_fs": _label_column(y_fs, n, "y_fs")})
        if self._has_split is None:
            self._has_split = split is not None
        if (split is not None) != self._has_split:
            raise DataError("Expected 'split' in every chunk written or in none of them")
        if split is not None:
            names = np.asarray(split).astype(str)
            if names.shape != (n,):
                raise DataError(f"Expected 'split' of shape ({n},) to match the vectors (got shape {names.shape})")
            frame["split"] = names

        self._vectors.append(matrix)
        self._frames.append(frame)
        self._buffered += n
        while self._buffered >= self.shard_size:
            self._flush(self.shard_size)

    def _flush(self, count: int) -> None:
        vectors = np.concatenate(self._vectors) if len(self._vectors) > 1 else self._vectors[0]
        frame = pd.concat(self._frames, ignore_index=True) if len(self._frames) > 1 else self._frames[0]
        name = f"shard-{len(self._shards):05d}"
        save_npy_atomic(self.out_dir / f"{name}.npy", vectors[:count])
        save_parquet_atomic(self.out_dir / f"{name}.parquet", frame.iloc[:count].reset_index(drop=True))
        self._shards.append({"vectors": f"{name}.npy", "labels": f"{name}.parquet", "num_events": int(count)})
        self._num_events += count

        rest = len(vectors) - count
        self._vectors = [vectors[count:]] if rest else []
        self._frames = [frame.iloc[count:].reset_index(drop=True)] if rest else []
        self._buffered = rest

    def close(self) -> Path:
        """Save the last shard and ``index.json``; return the index path."""
        index_path = self.out_dir / INDEX_NAME
        if self._closed:
            return index_path
        if self._buffered:
            self._flush(self._buffered)
        index = {
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "dtype": "float32",
            "num_events": self._num_events,
            "shards": self._shards,
            "metadata": self.metadata,
        }
        atomic_write_text(index_path, json.dumps(index, indent=2) + "\n")
        self._closed = True
        log.info("wrote %d embeddings of dim %d in %d shards to %s", self._num_events, self.dim, len(self._shards), self.out_dir)
        return index_path

    def __enter__(self) -> EmbeddingWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            log.warning("embedding write to %s failed; no index written", self.out_dir)


@dataclass(frozen=True)
class _Shard:
    """One shard: file paths, or arrays for a store built in memory."""

    num_events: int
    vectors_path: Path | None = None
    labels_path: Path | None = None
    vectors: np.ndarray | None = None
    labels: pd.DataFrame | None = None


@dataclass(frozen=True)
class EmbeddingStore:
    """Read access to embeddings written by :class:`EmbeddingWriter` (or an array).

    Attributes:
        root: The folder or ``.npy`` file opened (None for an in-memory store).
        dim: Embedding dimension.
        num_events: Total number of events.
        metadata: The ``metadata`` object of the index.
    """

    root: Path | None
    dim: int
    num_events: int
    shards: tuple[_Shard, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> EmbeddingStore:
        """Open an embedding folder, or a plain ``.npy`` file with an optional parquet file of its stem.

        A plain ``.npy`` file without a parquet file gets event ids 0..N-1 and unknown labels.
        """
        path = Path(path)
        if path.is_dir():
            return cls._open_folder(path)
        if path.suffix == ".npy" and path.is_file():
            return cls._open_pair(path)
        if not path.exists():
            raise DataError(f"Embeddings not found: {path} does not exist")
        raise DataError(f"{path}: expected an embedding folder with {INDEX_NAME} or a .npy file")

    @classmethod
    def _open_folder(cls, root: Path) -> EmbeddingStore:
        index_path = root / INDEX_NAME
        if not index_path.is_file():
            raise DataError(f"{root}: {INDEX_NAME} not found; the folder is not an embedding store or its write did not finish")
        try:
            index = json.loads(index_path.read_text())
            version, dim, entries = index["format_version"], int(index["dim"]), index["shards"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{index_path}: invalid embedding index ({exc!r})") from exc
        if version != FORMAT_VERSION:
            raise DataError(f"{index_path}: format version {version} is not supported (expected {FORMAT_VERSION})")

        shards = []
        for entry in entries:
            vectors_path, labels_path = root / entry["vectors"], root / entry["labels"]
            count = int(entry["num_events"])
            _check_shard(vectors_path, labels_path, count=count, dim=dim)
            shards.append(_Shard(count, vectors_path=vectors_path, labels_path=labels_path))
        total = sum(shard.num_events for shard in shards)
        if total != index.get("num_events", total):
            raise DataError(f"{index_path}: num_events is {index['num_events']} but the shards contain {total}")
        return cls(root, dim, total, tuple(shards), dict(index.get("metadata") or {}))

    @classmethod
    def _open_pair(cls, vectors_path: Path) -> EmbeddingStore:
        vectors = _memmap(vectors_path, float32_only=False)
        n, dim = vectors.shape
        in_memory = None
        if vectors.dtype != np.float32:
            # NOTE: a non-float32 file is converted in memory, so it must fit there; folders stay memory-mapped
            log.info("%s contains %s vectors; converting them to float32 in memory", vectors_path, vectors.dtype)
            in_memory = as_float32_matrix(vectors, source=str(vectors_path))

        labels_path = vectors_path.with_suffix(".parquet")
        labels = None
        if labels_path.is_file():
            _check_labels(labels_path, count=n, vectors_name=vectors_path.name)
        else:
            log.info("%s not found: event ids are the row numbers of %s and labels are unknown", labels_path.name, vectors_path)
            labels = _default_labels(n)
        shard = _Shard(
            n,
            vectors_path=None if in_memory is not None else vectors_path,
            labels_path=labels_path if labels is None else None,
            vectors=in_memory,
            labels=labels,
        )
        return cls(vectors_path, int(dim), n, (shard,), {})

    @classmethod
    def from_array(cls, vectors: Any, *, event_id: Any = None, y: Any = None, y_fs: Any = None) -> EmbeddingStore:
        """Wrap an in-memory ``(N, D)`` array; event ids default to 0..N-1 and labels to -1."""
        matrix = as_float32_matrix(vectors, source="embedding array")
        n = len(matrix)
        labels = _default_labels(n) if event_id is None else pd.DataFrame({"event_id": _label_column(event_id, n, "event_id")})
        labels["y"] = _label_column(y, n, "y")
        labels["y_fs"] = _label_column(y_fs, n, "y_fs")
        return cls(None, int(matrix.shape[1]), n, (_Shard(n, vectors=matrix, labels=labels),), {})

    def iter_shards(self) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """Yield ``(vectors, labels)`` per shard; file vectors are read-only memory maps."""
        for shard in self.shards:
            yield self._vectors(shard), self._labels(shard)

    def labels(self) -> pd.DataFrame:
        """Return the label columns of all events in store order (vectors are not read)."""
        return pd.concat([self._labels(shard) for shard in self.shards], ignore_index=True)

    def load(self, *, max_events: int | None = None, rows: Any = None, copy: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
        """Read vectors and labels into memory.

        Args:
            max_events: Read only the first ``max_events`` events (default all).
            rows: Global row numbers to read, in the order given; exclusive with ``max_events``.
            copy: With False, a store made by :meth:`from_array` returns its own array (not a
                copy) when every row is requested in order; the caller must not modify it.

        Returns:
            ``(vectors, labels)``: a float32 ``(n, dim)`` array and a frame with ``n`` rows.
        """
        if rows is not None and max_events is not None:
            raise ConfigError("Pass either rows or max_events to EmbeddingStore.load, not both")
        if rows is None:
            stop = self.num_events if max_events is None else min(int(max_events), self.num_events)
            rows = np.arange(stop)
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.num_events):
            raise DataError(f"Row numbers must be in [0, {self.num_events}) (got {rows.min()}..{rows.max()})")
        in_memory = len(self.shards) == 1 and self.shards[0].vectors is not None
        if not copy and in_memory and len(rows) == self.num_events and (rows == np.arange(self.num_events)).all():
            return self.shards[0].vectors, self.shards[0].labels.copy()

        offsets = np.cumsum([0] + [shard.num_events for shard in self.shards])
        shard_of_row = np.searchsorted(offsets, rows, side="right") - 1
        vectors = np.empty((len(rows), self.dim), dtype=np.float32)
        frames = []
        positions = []
        for number in np.unique(shard_of_row):
            where = np.flatnonzero(shard_of_row == number)
            local = rows[where] - offsets[number]
            shard = self.shards[number]
            if len(where) and where[-1] - where[0] + 1 == len(where):
                # a contiguous block of the output (sorted rows): gather straight into it, so the
                # shard's rows are not first copied into a temporary array as large as the block
                np.take(self._vectors(shard), local, axis=0, out=vectors[where[0] : where[-1] + 1], mode="clip")
            else:
                vectors[where] = self._vectors(shard)[local]
            frames.append(self._labels(shard).iloc[local])
            positions.append(where)
        if not frames:
            return vectors, _default_labels(0)
        order = np.argsort(np.concatenate(positions), kind="stable")
        labels = pd.concat(frames, ignore_index=True).iloc[order].reset_index(drop=True)
        return vectors, labels

    @staticmethod
    def _vectors(shard: _Shard) -> np.ndarray:
        return shard.vectors if shard.vectors is not None else _memmap(shard.vectors_path)

    @staticmethod
    def _labels(shard: _Shard) -> pd.DataFrame:
        if shard.labels is not None:
            return shard.labels
        return pq.read_table(shard.labels_path).to_pandas()


def _default_labels(n: int) -> pd.DataFrame:
    return pd.DataFrame({"event_id": np.arange(n, dtype=np.int64), "y": np.full(n, -1, np.int64), "y_fs": np.full(n, -1, np.int64)})


def _memmap(path: Path, *, float32_only: bool = True) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the embedding vectors ({exc})") from exc
    numeric = np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    if array.ndim != 2 or not numeric or (float32_only and array.dtype != np.float32):
        expected = "float32" if float32_only else "numeric"
        raise DataError(f"{path}: expected a {expected} array of shape (events, dim) (got {array.dtype} {array.shape})")
    return array


def _check_shard(vectors_path: Path, labels_path: Path, *, count: int, dim: int) -> None:
    """Check a shard's files against the index without reading the vectors."""
    vectors = _memmap(vectors_path)
    if vectors.shape != (count, dim):
        raise DataError(f"{vectors_path}: expected shape ({count}, {dim}) from the index (got {vectors.shape})")
    _check_labels(labels_path, count=count, vectors_name=vectors_path.name)


def _check_labels(labels_path: Path, *, count: int, vectors_name: str) -> None:
    try:
        schema = pq.read_schema(labels_path)
        rows = pq.ParquetFile(labels_path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{labels_path}: cannot read the embedding labels ({exc})") from exc
    missing = [name for name in LABEL_COLUMNS if name not in schema.names]
    if missing:
        raise DataError(f"{labels_path}: columns {missing} not found (found {schema.names})")
    if rows != count:
        raise DataError(f"{labels_path}: expected {count} rows to match {vectors_name} (got {rows})")
