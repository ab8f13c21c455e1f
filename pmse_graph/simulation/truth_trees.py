"""Decay-tree templates read from MC-truth ROOT files (the ``--truth-trees`` mode).

:func:`read_truth_templates` turns every event's truth record (PDG codes and mother indices,
BESIII/TopoAna layout: the J/psi first with mother -1) into a template and deduplicates them,
so that :meth:`DecayModel.from_truth_trees` can replay the real class mix with fresh
kinematics.

Cleaning policy: entries that are not particles are removed, and their daughters are attached
to the removed entry's mother. These are quarks and gluons (PDG 1-8 and 21) and
generator-internal objects such as strings and clusters (PDG 81-100). The number of removed
entries is logged. BESIII's inclusive J/psi truth contains none of them (checked on the TopoAna
reference files: their 114 distinct codes are all hadrons, leptons and photons). Records
whose first entry is not a root (mother -1), or whose mother indices point forwards or out of
range, raise :class:`DataError` naming the file and entry.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from pmse_graph.errors import DataError
from pmse_graph.simulation.decay_model import LEAF_MODEL_NAME, Template, unique_rows_fast
from pmse_graph.simulation.decfile import ParticleProperties, properties_from_particle, read_particle_table

logger = logging.getLogger(__name__)

TRUTH_MODEL_NAME = "PHSP"
"""Model given to every decaying particle of a truth tree (truth records carry no model)."""


def is_non_particle(pdg: np.ndarray) -> np.ndarray:
    """Return True for quarks, gluons and generator-internal codes (strings, clusters: 81-100)."""
    code = np.abs(pdg)
    return ((code >= 1) & (code <= 8)) | (code == 21) | ((code >= 81) & (code <= 100))


def read_truth_templates(
    files: str | os.PathLike[str] | list[str | os.PathLike[str]],
    *,
    tree: str = "evt",
    pid: str = "Pid",
    mother: str = "Midx",
    particle_table: str | os.PathLike[str] | None = None,
    step_size: int = 200_000,
) -> tuple[list[Template], np.ndarray, dict[int, ParticleProperties]]:
    """Read truth decay trees and deduplicate them into templates.

    Args:
        files: one ROOT file or a list of them.
        tree: name of the TTree (default ``"evt"``).
        pid: jagged branch of PDG codes (default ``"Pid"``).
        mother: jagged branch of mother indices, -1 for the root (default ``"Midx"``).
        particle_table: BESIII ``pdt.table`` for the masses of codes ``particle`` does not know.
        step_size: events read per chunk (default 200,000).

    Returns:
        The distinct templates in order of first appearance, the template index of every
        stored event (shape ``(num_events,)`` int64) and the properties of every code met.

    Raises:
        DataError: for a missing file, tree or branch, a malformed record or a code without mass.
    """

    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise DataError("No truth-tree files given")
    index: dict[bytes, int] = {}
    rows_kept: list[np.ndarray] = []
    event_templates: list[np.ndarray] = []
    removed = 0
    for path in paths:
        ttree = _open_tree(Path(path), tree, (pid, mother))
        first_entry = 0
        for arrays in ttree.iterate([pid, mother], step_size=step_size, library="np"):
            pdg_events, mother_events = arrays[pid], arrays[mother]
            offsets, pdg, mothers, dropped = _clean(Path(path), pdg_events, mother_events, first_entry)
            removed += dropped
            ids = _deduplicate(offsets, pdg, mothers, index, rows_kept)
            event_templates.append(ids)
            first_entry += len(pdg_events)
    if removed:
        logger.info("removed %d parton, string or cluster entries from the truth trees", removed)

    properties = _properties_for(rows_kept, particle_table, paths)
    templates = [_template(row, properties) for row in rows_kept]
    return templates, np.concatenate(event_templates).astype(np.int64), properties


def _open_tree(path: Path, tree: str, branches: tuple[str, ...]):
    import uproot

    if not path.is_file():
        raise DataError(f"Truth-tree file not found: {path}")
    try:
        handle = uproot.open(path)
    except Exception as exc:  # uproot raises several exception classes for unreadable files
        raise DataError(f"Cannot read {path} as a ROOT file: {exc}") from exc
    if tree not in handle:
        found = ", ".join(key.split(";")[0] for key in handle.keys()) or "none"
        raise DataError(f"{path}: tree '{tree}' not found (trees: {found}); pass the tree name option")
    ttree = handle[tree]
    for branch in branches:
        if branch not in ttree.keys():
            raise DataError(f"{path}:{tree}: branch '{branch}' not found (branches: {', '.join(ttree.keys())}); pass the branch name option")
    return ttree


def _clean(path: Path, pdg_events: np.ndarray, mother_events: np.ndarray, first_entry: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Flatten, validate and remove non-particle entries; return offsets, pdg, local mothers."""
    counts = np.fromiter((len(e) for e in pdg_events), dtype=np.int64, count=len(pdg_events))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pdg = np.concatenate(pdg_events).astype(np.int64) if len(pdg_events) else np.zeros(0, dtype=np.int64)
    mothers = np.concatenate(mother_events).astype(np.int64) if len(mother_events) else np.zeros(0, dtype=np.int64)
    event = np.repeat(np.arange(counts.shape[0]), counts)
    local = np.arange(pdg.shape[0]) - offsets[event]

    # validation: a root first, mothers before daughters
    bad = (mothers >= local) | (mothers < -1) | ((local == 0) & (mothers != -1)) | ((local > 0) & (mothers < 0))
    if counts.size and np.any(counts == 0):
        bad_event = int(np.flatnonzero(counts == 0)[0])
        raise DataError(f"{path}: entry {first_entry + bad_event} has an empty truth record")
    if bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: entry {first_entry + int(event[where])}, particle {int(local[where])}: mother index {int(mothers[where])} "
            "is invalid (expected -1 for the first particle only, else an earlier particle of the same event)"
        )

    drop = is_non_particle(pdg)
    if not drop.any():
        return offsets, pdg.astype(np.int32), mothers.astype(np.int32), 0

    # attach daughters of removed entries to the nearest kept ancestor, then renumber
    global_mother = np.where(mothers >= 0, mothers + offsets[event], -1)
    for _depth in range(64):
        through = (global_mother >= 0) & drop[np.maximum(global_mother, 0)]
        if not through.any():
            break
        global_mother = np.where(through, global_mother[np.maximum(global_mother, 0)], global_mother)
    keep = ~drop
    if np.any(drop[offsets[:-1]]):
        bad_event = int(np.flatnonzero(drop[offsets[:-1]])[0])
        raise DataError(f"{path}: entry {first_entry + bad_event} starts with a non-particle code; the root must be a particle")
    new_position = np.cumsum(keep) - 1
    new_counts = np.bincount(event[keep], minlength=counts.shape[0])
    new_offsets = np.concatenate([[0], np.cumsum(new_counts)])
    kept_mother = global_mother[keep]
    kept_event = event[keep]
    local_mother = np.where(kept_mother >= 0, new_position[np.maximum(kept_mother, 0)] - new_offsets[kept_event], -1)
    return new_offsets, pdg[keep].astype(np.int32), local_mother.astype(np.int32), int(drop.sum())


def _deduplicate(offsets: np.ndarray, pdg: np.ndarray, mothers: np.ndarray, index: dict[bytes, int], rows_kept: list[np.ndarray]) -> np.ndarray:
    counts = np.diff(offsets)
    num_events = counts.shape[0]
    width = int(counts.max()) if num_events else 0
    event = np.repeat(np.arange(num_events), counts)
    local = np.arange(pdg.shape[0]) - offsets[event]

    # one row per event: (pdg, mother) pairs, padded with a pair that no record contains
    rows = np.full((num_events, 2 * width), np.iinfo(np.int32).min, dtype=np.int64)
    rows[event, 2 * local] = pdg
    rows[event, 2 * local + 1] = mothers
    unique, inverse = unique_rows_fast(rows)

    # number new templates in order of first appearance
    first = np.full(unique.shape[0], num_events, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(num_events))
    ids = np.empty(unique.shape[0], dtype=np.int64)
    for position in np.argsort(first, kind="stable").tolist():
        row = unique[position]
        trimmed = row[row != np.iinfo(np.int32).min].astype(np.int32)
        key = trimmed.tobytes()
        found = index.get(key)
        if found is None:
            found = len(rows_kept)
            index[key] = found
            rows_kept.append(trimmed)
        ids[position] = found
    return ids[inverse]


def _properties_for(rows: list[np.ndarray], particle_table: str | os.PathLike[str] | None, paths: list) -> dict[int, ParticleProperties]:
    codes = np.unique(np.concatenate([row[0::2] for row in rows])) if rows else np.zeros(0, dtype=np.int32)
    by_code = {p.pdg: p for p in read_particle_table(particle_table).values()} if particle_table is not None else {}
    properties: dict[int, ParticleProperties] = {}
    unknown: list[int] = []
    for code in codes.tolist():
        if code in by_code:
            properties[code] = by_code[code]
            continue
        try:
            properties[code] = properties_from_particle(code, name=str(code))
        except LookupError:
            unknown.append(code)
    if unknown:
        raise DataError(
            f"{', '.join(map(str, paths))}: no mass known for PDG codes {unknown}; pass a particle table "
            "(for BESIII truth: the pdt.table of BesEvtGen) that defines them"
        )
    return properties


def _template(row: np.ndarray, properties: dict[int, ParticleProperties]) -> Template:
    pdg = row[0::2].astype(np.int32)
    mother = row[1::2].astype(np.int32)
    decays = np.zeros(pdg.shape[0], dtype=bool)
    decays[mother[mother >= 0]] = True
    return Template(
        pdg=pdg,
        mother=mother,
        model=tuple(TRUTH_MODEL_NAME if d else LEAF_MODEL_NAME for d in decays),
        mass=np.asarray([properties[int(c)].mass for c in pdg]),
        width=np.asarray([properties[int(c)].width for c in pdg]),
        max_dm=np.asarray([properties[int(c)].max_dm for c in pdg]),
    )
