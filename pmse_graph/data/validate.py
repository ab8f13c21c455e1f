"""Check input files against a schema before any event is read.

:func:`validate_files` opens every file, finds the schema's tree and checks
that each branch the schema names exists and contains numbers. It also checks
that every basket of those branches lies inside the file, which catches a
truncated copy without reading the data. Problems become a :class:`DataError`
that names the file, the tree or branch, and the nearest names that exist.
"""

from __future__ import annotations

import difflib
import glob
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import uproot

from pmse_graph.data.schema import Schema
from pmse_graph.errors import DataError

logger = logging.getLogger(__name__)

_URL_PREFIXES = ("root://", "http://", "https://", "s3://", "file://")
_GLOB_CHARACTERS = set("*?[")


@dataclass
class FileReport:
    """Validation result of one file.

    Attributes:
        path: the file as given (after glob expansion).
        num_entries: entries of the schema's tree, 0 when the file is unusable.
        problems: human-readable problems; empty when the file is usable.
        branch_types: branch name -> ROOT type name, for the branches the schema reads.
    """

    path: str
    num_entries: int = 0
    problems: list[str] = field(default_factory=list)
    branch_types: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the file can be read with the schema."""
        return not self.problems


def expand_files(files: str | os.PathLike[str] | list[str | os.PathLike[str]]) -> list[str]:
    """Expand local globs and folders and return the list of paths or URLs, in the given order.

    A folder stands for the ``*.root`` files directly inside it, sorted by name.

    Raises:
        DataError: a pattern, path or folder matches no local file.
    """
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    expanded: list[str] = []
    for item in files:
        text = os.fspath(item)
        if text.startswith(_URL_PREFIXES):
            expanded.append(text)
        elif _GLOB_CHARACTERS & set(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(f"No file matches the pattern '{text}'; check the path and the quoting of the glob")
            expanded.extend(matches)
        elif os.path.isdir(text):
            matches = sorted(glob.glob(os.path.join(glob.escape(text), "*.root")))
            if not matches:
                raise DataError(f"No *.root file found in the folder {text}")
            expanded.extend(matches)
        elif os.path.exists(text):
            expanded.append(text)
        else:
            raise DataError(f"Input file not found: {text}")
    if not expanded:
        raise DataError("No input files given")
    return expanded


def nearest_names(name: str, candidates: list[str], count: int = 3) -> list[str]:
    """Return up to ``count`` entries of ``candidates`` that look like ``name``."""
    matches = difflib.get_close_matches(name, candidates, n=count, cutoff=0.5)
    if not matches:
        lowered = name.lower()
        matches = [c for c in candidates if lowered in c.lower() or c.lower() in lowered][:count]
    return matches


def open_tree(path: str, tree: str):
    """Open ``path`` and return (file, tree object); raise :class:`DataError` naming what failed."""
    try:
        handle = uproot.open(path)
    except Exception as exc:  # uproot raises many types for unreadable files
        raise DataError(f"Cannot open {path}: {type(exc).__name__}: {exc}. The file may be truncated or not a ROOT file.") from exc
    try:
        found = handle[tree]
    except Exception as exc:
        try:
            classes = handle.classnames()
        except Exception:  # a damaged directory: report the original error below
            classes = {}
        handle.close()
        trees = sorted({key.split(";")[0] for key, cls in classes.items() if cls.startswith(("TTree", "TNtuple"))})
        if tree in trees:
            raise DataError(
                f"Cannot read tree '{tree}' in {path}: {type(exc).__name__}: {exc}. The file may be truncated or damaged."
            ) from exc
        raise DataError(
            f"Tree '{tree}' not found in {path}; trees found: {trees or 'none'}. Set 'tree' in the schema to one of them."
        ) from exc
    if not isinstance(found, uproot.TTree):
        handle.close()
        raise DataError(f"'{tree}' in {path} is a {type(found).__name__}, not a TTree; pmse-graph reads TTrees only")
    return handle, found


def _basket_end(branch) -> int:
    seeks = np.asarray(branch.member("fBasketSeek"))[: branch.num_baskets]
    sizes = np.asarray(branch.member("fBasketBytes"))[: branch.num_baskets]
    if len(seeks) == 0:
        return 0
    return int((seeks.astype(np.int64) + sizes.astype(np.int64)).max())


def _check_branch(tree, name: str, path: str, tree_name: str, report: FileReport, file_size: int | None) -> None:
    available = list(tree.keys())
    if name not in available:
        near = nearest_names(name, available)
        report.problems.append(
            f"{path}: branch '{name}' not found in tree '{tree_name}'; nearest branches: {near or 'none'}. "
            "Fix the branch name in the schema or use files that contain it."
        )
        return
    branch = tree[name]
    report.branch_types[name] = branch.typename
    interpretation = branch.interpretation
    dtype = getattr(interpretation, "to_dtype", None)
    if dtype is None:
        content = getattr(interpretation, "content", None)
        dtype = getattr(content, "to_dtype", None)
    if dtype is not None and np.dtype(dtype).subdtype is not None:
        dtype = np.dtype(dtype).subdtype[0]  # fixed-size arrays such as double[3]
    if dtype is None or not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        report.problems.append(f"{path}: branch '{name}' has type {branch.typename}, expected numbers (int, float, double, bool)")
        return
    if file_size is not None and _basket_end(branch) > file_size:
        report.problems.append(
            f"{path}: branch '{name}' points past the end of the file ({file_size} bytes): the file is truncated. "
            "Copy or write it again."
        )


def validate_file(path: str, schema: Schema) -> FileReport:
    """Check one file against ``schema``; problems with the file go into the returned report instead of raising."""
    report = FileReport(path=path)
    try:
        handle, tree = open_tree(path, schema.tree)
    except DataError as exc:
        report.problems.append(str(exc))
        return report
    with handle:
        report.num_entries = int(tree.num_entries)
        try:
            file_size = int(handle.file.source.num_bytes)
        except Exception:  # remote sources may not know their size
            file_size = None
        for name in schema.all_branches():
            try:
                _check_branch(tree, name, path, schema.tree, report, file_size)
            except Exception as exc:
                report.problems.append(f"{path}: cannot read the metadata of branch '{name}': {type(exc).__name__}: {exc}")
    if report.num_entries == 0 and report.ok:
        logger.warning("%s: tree '%s' has no entries; it contributes no events", path, schema.tree)
    return report


def validate_files(files, schema: Schema, *, raise_on_problem: bool = True) -> list[FileReport]:
    """Validate every file (paths, globs or URLs) against ``schema``.

    Args:
        files: a path, a glob or a list of them; URLs are passed to uproot as given.
        schema: the event schema.
        raise_on_problem: raise one :class:`DataError` listing every problem of every file
            (default True); with False, return the reports and let the caller decide.

    Returns:
        One :class:`FileReport` per file, in input order.
    """
    reports = [validate_file(path, schema) for path in expand_files(files)]
    problems = [problem for report in reports for problem in report.problems]
    if problems and raise_on_problem:
        raise DataError("Input files do not match the schema '" + schema.name + "':\n  " + "\n  ".join(problems))
    return reports
