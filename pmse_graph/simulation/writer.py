"""ROOT writer for the BESIII-like reconstructed ntuple of ``docs/ntuple_format.md``.

:class:`NtupleWriter` appends chunks of events to a sequence of ROOT files of at most
``events_per_file`` events each (``<prefix>_0000.root``, ``<prefix>_0001.root``, ...), with
one TTree ``evt`` per file. Each file is written under a hidden temporary name in the output
folder and renamed once complete, so a reader never sees a partial file and an interrupted
run leaves only complete files under final names.

Branch types are fixed here, not taken from the inputs. Counters and integer codes are int32
(``event`` is int64) and the truth branches ``Pid``/``Midx`` are int32 with the counter
``Nmcps``. Per-track floats are float32, whose precision is far finer than the detector
resolutions and which represents 9999 exactly. Jagged branches share the counters
``nTracks`` (per-track) and ``Nmcps`` (truth).

Reproducible bytes: uproot stamps each file with a UUID and with the wall-clock time
(``TDatime`` fields of the file header, the directory and every key, to the second). The UUID
is derived from ``file_id_seed`` and the file's number, so only the time stamps differ between
two files of the same events: uproot 5.7 reads ``datetime.datetime.now()`` for them and has no
option to set them. With the clock held fixed (as the tests do), the files are byte-identical.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Literal, get_args

import awkward as ak
import numpy as np

from pmse_graph.errors import DataError

logger = logging.getLogger(__name__)

TREE_NAME = "evt"

Compression = Literal["zlib", "none"]

EVENT_BRANCHES: dict[str, type] = {
    "run": np.int32,
    "event": np.int64,
    "nCharged": np.int32,
    "nNeutral": np.int32,
    "nGoodCharged": np.int32,
    "nGoodNeutral": np.int32,
    "topo_tree_id": np.int32,
    "topo_fs_id": np.int32,
}
"""Per-event branches besides the counters ``nTracks`` and ``Nmcps``."""

INT_TRACK_BRANCHES = (
    "q",
    "pid_prob_type",
    "emc_numHits",
    "muc_numLayer",
    "muc_maxHitsInlater",
    "muc_numHits",
    "muc_dof",
    "mc_idx",
)
FLOAT_TRACK_BRANCHES = (
    "mdc_p3_px",
    "mdc_p3_py",
    "mdc_p3_pz",
    "vz0",
    "vr0",
    "pid_prob_e",
    "pid_prob_mu",
    "pid_prob_pi",
    "pid_prob_K",
    "pid_prob_p",
    "emc_e3x3",
    "emc_e5x5",
    "emc_energy",
    "emc_x",
    "emc_y",
    "emc_z",
    "emc_time",
    "EoP",
    "emc_secmom",
    "emc_latmom",
    "muc_dpt",
    "muc_chisq",
)
TRACK_BRANCHES: dict[str, type] = {
    **{name: np.int32 for name in INT_TRACK_BRANCHES},
    **{name: np.float32 for name in FLOAT_TRACK_BRANCHES},
}
"""Jagged per-track branches, counted by ``nTracks``."""

TRUTH_BRANCHES: dict[str, type] = {"Pid": np.int32, "Midx": np.int32}
"""Jagged MC-truth branches, counted by ``Nmcps``."""

TRACK_COUNTER = "nTracks"
TRUTH_COUNTER = "Nmcps"


def _counter_name(branch: str) -> str:
    return TRUTH_COUNTER if branch in TRUTH_BRANCHES else TRACK_COUNTER


class NtupleWriter:
    """Append event chunks to size-limited ROOT files, each renamed into place when complete.

    Args:
        out_dir: output folder, created when missing.
        events_per_file: maximum events per file (default 100000).
        prefix: file name prefix (default ``"jpsi_inclusive"``).
        compression: ``"zlib"`` (level 1, the default) or ``"none"``; compression takes most
            of the writing time, so ``"none"`` trades about twice the disk space for speed.
        file_id_seed: seed of the files' UUIDs, each derived from it and the file's number;
            None (default) lets uproot draw random ones.

    Use it as a context manager: leaving the block normally closes the last file, leaving it
    by an exception deletes the unfinished temporary file.
    """

    def __init__(
        self,
        *,
        out_dir: str | os.PathLike[str],
        events_per_file: int = 100_000,
        prefix: str = "jpsi_inclusive",
        compression: Compression = "zlib",
        file_id_seed: int | None = None,
    ) -> None:
        if events_per_file < 1:
            raise ValueError(f"Expected events_per_file >= 1 (got {events_per_file})")
        if compression not in get_args(Compression):
            raise ValueError(f"Expected compression in {get_args(Compression)} (got {compression!r})")
        self.compression = compression
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.events_per_file = events_per_file
        self.prefix = prefix
        self.file_id_seed = file_id_seed
        self.paths: list[Path] = []
        self._file = None
        self._tmp_path: Path | None = None
        self._events_in_file = 0

    def __enter__(self) -> NtupleWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(
        self,
        *,
        event_branches: dict[str, np.ndarray],
        track_branches: dict[str, np.ndarray],
        num_tracks: np.ndarray,
        pid: np.ndarray,
        midx: np.ndarray,
        num_truth: np.ndarray,
    ) -> None:
        """Append one chunk of events, starting new files as they fill up.

        Args:
            event_branches: every branch of :data:`EVENT_BRANCHES`, shape ``(num_events,)``.
            track_branches: every branch of :data:`TRACK_BRANCHES`, flat over the chunk's
                tracks, shape ``(sum(num_tracks),)``.
            num_tracks: tracks per event, shape ``(num_events,)``.
            pid: truth PDG codes, flat, shape ``(sum(num_truth),)``.
            midx: truth mother indices, flat, same shape as ``pid``.
            num_truth: truth particles per event, shape ``(num_events,)``.

        Raises:
            DataError: when a branch is missing or its length does not match the counters.
        """
        num_events = int(num_tracks.shape[0])
        _check_branches(event_branches, EVENT_BRANCHES, num_events, "per-event")
        _check_branches(track_branches, TRACK_BRANCHES, int(num_tracks.sum()), "per-track")
        _check_branches({"Pid": pid, "Midx": midx}, TRUTH_BRANCHES, int(num_truth.sum()), "truth")
        if num_truth.shape[0] != num_events:
            raise DataError(f"Expected {num_events} truth counts, one per event (got {num_truth.shape[0]})")

        track_offsets = np.concatenate([[0], np.cumsum(num_tracks)])
        truth_offsets = np.concatenate([[0], np.cumsum(num_truth)])
        start = 0
        while start < num_events:
            if self._file is None:
                self._open_next()
            stop = min(num_events, start + self.events_per_file - self._events_in_file)
            self._extend(
                event_branches,
                track_branches,
                track_offsets,
                {"Pid": pid, "Midx": midx},
                truth_offsets,
                start,
                stop,
            )
            self._events_in_file += stop - start
            start = stop
            if self._events_in_file >= self.events_per_file:
                self._finish_file()

    def close(self) -> list[Path]:
        """Finish the current file and return the paths of all files written."""
        if self._file is not None:
            self._finish_file()
        return list(self.paths)

    def abort(self) -> None:
        """Close and delete the unfinished temporary file, keeping completed files."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None

    def _open_next(self) -> None:
        import uproot

        final = self.out_dir / f"{self.prefix}_{len(self.paths):04d}.root"
        self._tmp_path = self.out_dir / f".{final.name}.tmp"
        codec = uproot.ZLIB(1) if self.compression == "zlib" else None
        options: dict[str, object] = {}
        if self.file_id_seed is not None:
            file_uuid = uuid.uuid5(uuid.NAMESPACE_OID, f"pmse-graph simulate {self.file_id_seed} {final.name}")
            options["uuid_function"] = lambda: file_uuid
        self._file = uproot.recreate(self._tmp_path, compression=codec, **options)
        branch_types: dict[str, object] = {name: np.dtype(dtype) for name, dtype in EVENT_BRANCHES.items()}
        for name, dtype in {**TRACK_BRANCHES, **TRUTH_BRANCHES}.items():
            branch_types[name] = ak.types.ArrayType(ak.types.ListType(ak.types.NumpyType(_primitive(dtype))), 0)
        self._file.mktree(TREE_NAME, branch_types, counter_name=_counter_name)
        self._events_in_file = 0
        self.paths.append(final)

    def _extend(
        self,
        event_branches: dict[str, np.ndarray],
        track_branches: dict[str, np.ndarray],
        track_offsets: np.ndarray,
        truth_branches: dict[str, np.ndarray],
        truth_offsets: np.ndarray,
        start: int,
        stop: int,
    ) -> None:
        data: dict[str, object] = {}
        for name, dtype in EVENT_BRANCHES.items():
            data[name] = np.asarray(event_branches[name][start:stop], dtype=dtype)
        for branches, types, offsets in (
            (track_branches, TRACK_BRANCHES, track_offsets),
            (truth_branches, TRUTH_BRANCHES, truth_offsets),
        ):
            local = offsets[start : stop + 1] - offsets[start]
            begin, end = int(offsets[start]), int(offsets[stop])
            for name, dtype in types.items():
                content = np.asarray(branches[name][begin:end], dtype=dtype)
                data[name] = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(local), ak.contents.NumpyArray(content)))
        self._file[TREE_NAME].extend(data)

    def _finish_file(self) -> None:
        self._file.close()
        self._file = None
        os.replace(self._tmp_path, self.paths[-1])
        logger.info("Wrote %s (%d events)", self.paths[-1], self._events_in_file)
        self._tmp_path = None


def _primitive(dtype: type) -> str:
    return {np.int32: "int32", np.int64: "int64", np.float32: "float32", np.float64: "float64"}[dtype]


def _check_branches(branches: dict[str, np.ndarray], expected: dict[str, type], length: int, kind: str) -> None:
    missing = sorted(set(expected) - set(branches))
    if missing:
        raise DataError(f"Missing {kind} branches {missing} for the ntuple; the writer needs every branch of docs/ntuple_format.md")
    for name in expected:
        if np.shape(branches[name])[0] != length:
            raise DataError(f"Branch '{name}' has {np.shape(branches[name])[0]} entries, expected {length} ({kind})")
