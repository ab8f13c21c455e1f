"""Atomic file output: write to a temporary name in the target folder, then rename.

Readers never see a half-written checkpoint, table or plot, and an interrupted
write leaves the previous file in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def default_file_mode() -> int:
    """Return the mode a plain ``open()`` would give a new file: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary name keeps the suffix of ``path``, so libraries that pick a
    format from the extension (matplotlib, pandas) behave as for the final name.
    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        os.chmod(tmp_path, default_file_mode())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp_path:
        with open(tmp_path, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())


def atomic_write_frame(frame, path: str | os.PathLike[str]) -> Path:
    """Write a pandas DataFrame to ``.parquet`` or ``.csv`` (chosen by suffix, no index), atomically."""
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"Expected a .parquet or .csv path (got {path})")
    with atomic_path(path) as tmp_path:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp_path, index=False)
        else:
            frame.to_csv(tmp_path, index=False)
    return path
