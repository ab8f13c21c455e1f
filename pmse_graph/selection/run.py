"""One selection run over ntuple files: fits, decisions, cut flow, metrics and output files.

:func:`run_selection` is what ``pmse-graph select`` calls. It writes into ``out_dir``:

- ``selection.parquet``: one row per event with ``run``, ``event_id``, ``predicted``
  (class or "not selected"), ``reason``, ``chi2_4c``, ``chi2_5c``, the masses ``m_pipi``,
  ``m_plus``, ``m_minus`` and ``truth`` (class, "other", or "unknown" without a topology table);
- ``cutflow.csv``: events in, failed and remaining per step at the working point;
- ``metrics.json``: class fractions, per-class precision, recall and F1 at the working point,
  and with a scan the same per tightness plus the recall at 99% precision. With truth classes,
  ``precision_target`` names the classes that reach 99% precision. It also gives each class's
  highest precision, the classes that contaminate it there, and a one-line ``statement``.
  All of this covers the scan, or the working point alone without one;
- ``precision_recall.png`` (with a scan) and ``selection_config.yaml`` (the resolved cuts).
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pmse_graph.atomic import atomic_write_frame
from pmse_graph.config import atomic_write_text, dump_yaml
from pmse_graph.errors import DataError
from pmse_graph.selection.candidates import iterate_candidates, validate_inputs
from pmse_graph.selection.config import SelectionCuts
from pmse_graph.selection.evaluate import (
    class_fractions,
    class_metrics,
    has_truth,
    plot_precision_recall,
    precision_target,
    recall_at_precision,
)
from pmse_graph.selection.fits import fit_events
from pmse_graph.selection.selection import cut_flow, decide, truth_classes
from pmse_graph.simulation.detector.config import load_detector_config

logger = logging.getLogger(__name__)

SCAN_POINTS = 21
TOPOLOGY_FILE = "topology.csv"


@dataclass
class SelectionReport:
    """Outputs of one run.

    Attributes:
        frame: per-event fit results, decisions and truth, one row per event.
        cut_flow: the cut-flow table at the working point.
        metrics: the content of ``metrics.json``.
        paths: files written, by kind.
        seconds: wall seconds of the run.
    """

    frame: pd.DataFrame
    cut_flow: pd.DataFrame
    metrics: dict
    paths: dict[str, Path]
    seconds: float


def default_topology(paths: list[str]) -> Path | None:
    """Return the ``topology.csv`` beside the first input file, or None when there is none."""
    candidate = Path(paths[0]).parent / TOPOLOGY_FILE
    return candidate if candidate.is_file() else None


def run_selection(
    files: list[str | os.PathLike[str]],
    *,
    out_dir: str | os.PathLike[str],
    cuts: SelectionCuts | None = None,
    tightness: float = 0.5,
    scan: bool = False,
    topology: str | os.PathLike[str] | None = None,
    detector_config: str | os.PathLike[str] | None = None,
    step_size: int = 50_000,
    progress: bool = True,
) -> SelectionReport:
    """Select events from ntuple files and write the outputs listed in the module docstring.

    Args:
        files: ROOT ntuples (paths or globs) in the reconstructed ntuple format.
        out_dir: output folder, created when missing.
        cuts: selection cuts; None (default) uses :class:`SelectionCuts` defaults.
        tightness: working point in [0, 1] (default 0.5).
        scan: also evaluate ``SCAN_POINTS`` tightness values from 0 to 1 (default False).
        topology: ``topology.csv`` for the truth classes; None (default) uses the one beside the
            first file when it exists.
        detector_config: detector YAML for the good-track and good-photon cuts and the
            resolutions; None (default) uses the packaged BESIII parameters.
        step_size: events read per chunk (default 50,000).
        progress: show a progress bar (default True).

    Raises:
        DataError: for unreadable inputs; ValueError for a tightness outside [0, 1].
    """
    start = time.perf_counter()
    cuts = SelectionCuts() if cuts is None else cuts
    if not 0.0 <= tightness <= 1.0:
        raise ValueError(f"Expected a tightness in [0, 1] (got {tightness})")
    detector = load_detector_config(detector_config)
    paths = validate_inputs(list(files))
    topology_path = Path(topology) if topology is not None else default_topology(paths)

    # fits, chunk by chunk; only the per-event rows are kept
    # NOTE: one row of about 20 numbers per event stays in memory, because the scan and the
    # metrics need every event at once.
    frames = []
    bar = tqdm(total=None, unit="events", disable=not progress, desc="select")
    for candidates in iterate_candidates(paths, config=detector, step_size=step_size, min_pion_probability=cuts.min_pion_probability):
        frames.append(fit_events(candidates, cuts=cuts))
        bar.update(candidates.num_events)
    bar.close()
    if not frames:
        raise DataError(f"No events in {', '.join(paths)}; nothing to select")
    frame = pd.concat(frames, ignore_index=True)
    truth = truth_classes(frame["tree_id"].to_numpy(), topology_path)

    # working point
    decision = decide(frame, cuts=cuts, tightness=tightness)
    frame["predicted"] = decision.predicted.astype(str)
    frame["reason"] = decision.reason.astype(str)
    frame["truth"] = truth.astype(str)
    flow = cut_flow(decision)
    metrics: dict = {
        "num_events": int(len(frame)),
        "topology": str(topology_path) if topology_path is not None else None,
        "working_point": {"tightness": tightness, "cuts": decision.cuts.model_dump(), "selected": int((decision.failed_step < 0).sum())},
    }
    if has_truth(truth):
        metrics["class_fractions"] = class_fractions(truth)
        metrics["working_point"]["classes"] = class_metrics(truth, decision.predicted)

    # scan
    scan_points: list[dict] = []
    if scan:
        for value in np.linspace(0.0, 1.0, SCAN_POINTS):
            point = decide(frame, cuts=cuts, tightness=float(value))
            entry = {"tightness": float(value), "selected": int((point.failed_step < 0).sum())}
            if has_truth(truth):
                entry["classes"] = class_metrics(truth, point.predicted)
            scan_points.append(entry)
        metrics["scan"] = scan_points
        if has_truth(truth):
            metrics["recall_at_99_precision"] = recall_at_precision(scan_points)
    if has_truth(truth):
        evaluated = scan_points if scan else [{"tightness": tightness, "classes": metrics["working_point"]["classes"]}]
        metrics["precision_target"] = precision_target(evaluated, fractions=metrics["class_fractions"])

    # outputs, each written atomically
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "selection": out / "selection.parquet",
        "cutflow": out / "cutflow.csv",
        "metrics": out / "metrics.json",
        "config": out / "selection_config.yaml",
    }
    table = frame.rename(columns={"event": "event_id"})[
        ["run", "event_id", "predicted", "reason", "chi2_4c", "chi2_5c", "m_pipi", "m_plus", "m_minus", "truth"]
    ]
    atomic_write_frame(table, written["selection"])
    buffer = io.StringIO()
    flow.to_csv(buffer, index=False)
    atomic_write_text(written["cutflow"], buffer.getvalue())
    atomic_write_text(written["metrics"], json.dumps(metrics, indent=2, allow_nan=False, default=_json_number) + "\n")
    dump_yaml(cuts, written["config"])
    if scan and has_truth(truth):
        written["plot"] = out / "precision_recall.png"
        plot_precision_recall(scan_points, written["plot"], working_point=tightness)
    seconds = time.perf_counter() - start
    logger.info("Selected %d of %d events in %.1f s", metrics["working_point"]["selected"], len(frame), seconds)
    return SelectionReport(frame=frame, cut_flow=flow, metrics=metrics, paths=written, seconds=seconds)


def _json_number(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"Cannot write {type(value).__name__} to JSON")
