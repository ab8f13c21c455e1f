"""Summaries of input files for the ``inspect`` command: validity, sizes, conditions and labels."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from pmse_graph.data.labels import check_label_tables
from pmse_graph.data.reader import NONFINITE_POLICIES, NonFinitePolicy, ReadStats, iterate_chunks
from pmse_graph.data.schema import CONDITION_NAMES, Schema
from pmse_graph.data.validate import FileReport, expand_files, validate_files
from pmse_graph.errors import ConfigError, DataError

TOP_CLASSES = 10


@dataclass
class FileSummary:
    """Contents of one file, or the reasons it cannot be used.

    Attributes:
        path: the file.
        usable: False when validation or reading failed or no event is left.
        entries: entries of the tree.
        events: events kept after the drop policies.
        dropped_empty: events dropped for having zero particles.
        dropped_nonfinite: events dropped for NaN or inf values.
        particles: min, mean and max particles per kept event.
        conditions: mean of each condition count over kept events.
        tree_classes: the most frequent decay-tree class ids with their event counts.
        final_state_classes: the same for final-state class ids.
        problems: every problem found, one line each.
    """

    path: str
    usable: bool = True
    entries: int = 0
    events: int = 0
    dropped_empty: int = 0
    dropped_nonfinite: int = 0
    particles: dict[str, float] = field(default_factory=dict)
    conditions: dict[str, float] = field(default_factory=dict)
    tree_classes: list[tuple[int, int]] = field(default_factory=list)
    final_state_classes: list[tuple[int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def _summarize_one(report: FileReport, schema: Schema, step_size: int, nonfinite: NonFinitePolicy) -> FileSummary:
    summary = FileSummary(path=report.path, entries=report.num_entries, problems=list(report.problems))
    if not report.ok:
        summary.usable = False
        return summary

    stats = ReadStats()
    counts, conditions, trees, final_states = [], [], Counter(), Counter()
    try:
        for chunk in iterate_chunks(report.path, schema, step_size=step_size, nonfinite=nonfinite,
                                    validate=False, stats=stats):
            counts.append(chunk.counts)
            conditions.append(chunk.cond)
            trees.update(chunk.y[chunk.y >= 0].tolist())
            final_states.update(chunk.y_fs[chunk.y_fs >= 0].tolist())
    except DataError as exc:
        summary.usable = False
        summary.problems.append(str(exc))
        return summary

    summary.events, summary.dropped_empty, summary.dropped_nonfinite = stats.events_kept, stats.dropped_empty, stats.dropped_nonfinite
    for branch, values in stats.nonfinite_branches.items():
        summary.problems.append(f"branch '{branch}' has {values} invalid (non-finite or out-of-range) values, the first "
                                f"at {stats.first_invalid[branch]}. Their events are dropped under the 'drop-event' "
                                "policy and raise under 'error'.")
    if summary.events == 0:
        summary.usable = False
        summary.problems.append(
            f"{report.path}: no usable events: {summary.entries} entries, {summary.dropped_empty} dropped with zero "
            f"particles, {summary.dropped_nonfinite} dropped for invalid values"
        )

    if summary.events:
        all_counts = np.concatenate(counts)
        all_conditions = np.concatenate(conditions)
        summary.particles = {"min": int(all_counts.min()), "mean": float(all_counts.mean()), "max": int(all_counts.max())}
        summary.conditions = {name: float(all_conditions[:, i].mean()) for i, name in enumerate(CONDITION_NAMES)}
    summary.tree_classes = trees.most_common(TOP_CLASSES)
    summary.final_state_classes = final_states.most_common(TOP_CLASSES)
    return summary


def summarize_files(files, schema: Schema, *, step_size: int = 100_000,
                    nonfinite: NonFinitePolicy = "error") -> list[FileSummary]:
    """Validate and read every file, collecting counts and every problem instead of stopping at the first.

    A file is unusable when it fails validation, raises while read with the
    ``nonfinite`` policy, or leaves no event after the drop policies.

    Args:
        files: paths, globs or URLs.
        schema: the event schema.
        step_size: entries per read step (default 100,000).
        nonfinite: ``"error"`` (default, as the training pipeline) or ``"drop-event"``.

    Raises:
        ConfigError: an unknown ``nonfinite`` policy.
    """
    if nonfinite not in NONFINITE_POLICIES:
        raise ConfigError(f"Invalid non-finite policy '{nonfinite}': expected one of {NONFINITE_POLICIES}")
    reports = validate_files(expand_files(files), schema, raise_on_problem=False)
    summaries = [_summarize_one(report, schema, step_size, nonfinite) for report in reports]

    # each file reads alone, but read together their class ids would mean different trees
    try:
        if schema.labels:
            check_label_tables([report.path for report in reports])
    except DataError as exc:
        for summary in summaries:
            summary.problems.append(f"read together with the other inputs: {exc}")
    return summaries
