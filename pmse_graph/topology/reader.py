"""Topology tables of MC-truth ROOT files, read chunk by chunk.

:func:`count_topologies` reads the PDG-code and mother-index branches of one tree
in each file with ``uproot``, labels each chunk with
:func:`pmse_graph.topology.tree.label_events` and adds it to a
:class:`pmse_graph.topology.table.TopologyCounter`, so memory grows with the
number of classes, not with the number of events.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import uproot
from tqdm.auto import tqdm

from pmse_graph.errors import ConfigError, DataError
from pmse_graph.topology.names import ParticleNames
from pmse_graph.topology.table import TieOrder, TopologyCounter, TopologyTable, check_tie_order
from pmse_graph.topology.tree import RecordError, label_events

logger = logging.getLogger(__name__)


def _open_tree(path: Path, tree_name: str, branches: Sequence[str]):
    """Open ``tree_name`` in ``path`` and check that it has ``branches``."""
    if not path.is_file():
        raise DataError(f"Input file not found: {path}")
    try:
        root_file = uproot.open(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as a ROOT file: {exc}") from exc
    try:
        tree = root_file[tree_name]
    except KeyError:
        trees = sorted({key.split(";")[0] for key, cls in root_file.classnames().items() if cls == "TTree"})
        raise DataError(f"Tree {tree_name!r} not found in {path}; trees found: {trees or 'none'}. Choose one with --tree.") from None
    if not isinstance(tree, uproot.TTree):
        raise DataError(f"Object {tree_name!r} in {path} is a {type(tree).__name__}, not a TTree")
    available = list(tree.keys())
    for branch in branches:
        if branch not in available:
            nearest = difflib.get_close_matches(branch, available, n=3, cutoff=0.3)
            hint = f"; nearest names: {nearest}" if nearest else f"; branches found: {available[:20]}"
            raise DataError(f"Branch {branch!r} not found in tree {tree_name!r} of {path}{hint}")
    return tree


def count_topologies(
    files: Sequence[str | os.PathLike[str]],
    *,
    tree_name: str,
    pid_branch: str,
    mother_branch: str,
    names: ParticleNames | None = None,
    step_size: int = 100_000,
    progress: bool = True,
    tie_order: TieOrder = "topoana",
) -> TopologyTable:
    """Count the TopoAna decay trees of every event in ``files``.

    Args:
        files: ROOT files, read in the given order (class numbering by first
            appearance follows it).
        tree_name: tree in each file.
        pid_branch: jagged branch of PDG codes (TopoAna files: ``Pid``).
        mother_branch: jagged branch of mother indices, -1 for the root (``Midx``).
        names: particle table; the default is :meth:`ParticleNames.default`.
        step_size: entries read and labelled at once.
        progress: show a tqdm progress bar over entries.
        tie_order: order of classes with equal counts, see
            :func:`pmse_graph.topology.table.rank_order`.

    Raises:
        DataError: a file, tree or branch is missing, or an entry has an invalid
            record; the message names the file and the entry.
        ConfigError: ``step_size`` is not positive or ``tie_order`` is unknown.
    """
    check_tie_order(tie_order)
    if step_size < 1:
        raise ConfigError(f"Expected a positive step size (got {step_size})")
    names = names if names is not None else ParticleNames.default()
    paths = [Path(file) for file in files]
    trees = [_open_tree(path, tree_name, (pid_branch, mother_branch)) for path in paths]
    counter = TopologyCounter()
    total = sum(tree.num_entries for tree in trees)
    with tqdm(total=total, unit="event", desc="topology", disable=not progress) as bar:
        for path, tree in zip(paths, trees):
            for arrays, report in tree.iterate([pid_branch, mother_branch], step_size=step_size, library="ak", report=True):
                try:
                    labels = label_events(arrays[pid_branch], arrays[mother_branch], names=names)
                except RecordError as exc:
                    entry = report.tree_entry_start + exc.event
                    raise DataError(f"{path}, tree {tree_name!r}, entry {entry}: {exc.detail}") from exc
                counter.add(labels.tree, labels.final_state)
                bar.update(report.tree_entry_stop - report.tree_entry_start)
            logger.debug("Read %d entries from %s", tree.num_entries, path)
    return counter.to_table(tie_order=tie_order)
