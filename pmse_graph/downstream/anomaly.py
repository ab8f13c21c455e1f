"""Anomaly scores from embedding distances: :func:`run_anomaly` and its metrics.

The reference set is the labelled events of the top-N decay-tree classes (the same labelled
share and class choice as the classification task). Each unlabelled event's score is the mean
Euclidean distance to its ``k`` nearest reference events, found by faiss (exact up to
100,000 reference events, an IVF index above), so events unlike every known class score high.
The evaluation counts the unlabelled events of the top-N classes as normal and those of any
other class as anomalies. Events with an unknown class (-1) get a score but are left out of
the metrics.

The folder ``out`` receives ``scores.parquet``, ``per_class.csv`` (per known class of the
unlabelled events: events, whether it counts as anomalous, median score), ``metrics.json`` and
``roc.png``. With a topology table both tables carry the tree string of each class.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from pmse_graph.config import atomic_write_text
from pmse_graph.downstream.class_names import add_tree_columns, load_class_names
from pmse_graph.downstream.class_plots import plot_roc
from pmse_graph.downstream.labels import labelled_task
from pmse_graph.downstream.neighbours import build_search_index, search_batched
from pmse_graph.atomic import atomic_write_frame
from pmse_graph.downstream.results_io import read_embeddings
from pmse_graph.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DEFAULT_FALSE_POSITIVE_RATES = (0.01, 0.05, 0.10)


def knn_distance_scores(reference: np.ndarray, queries: np.ndarray, *, k: int, batch_size: int = 65_536) -> np.ndarray:
    """Return the mean Euclidean distance of each query to its ``k`` nearest reference vectors.

    Queries are searched in batches so the distance matrix stays at ``batch_size * k`` entries.
    The search is exact up to 100,000 reference events and goes through an IVF index above
    (:func:`~pmse_graph.downstream.neighbours.build_search_index`).

    Shapes:
        reference: (R, D); queries: (Q, D) -> (Q,) float32.

    Raises:
        ConfigError: ``k`` below 1 or above the number of reference vectors.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1 (got {k})")
    if k > len(reference):
        raise ConfigError(f"k = {k} exceeds the {len(reference)} labelled reference events. Lower --k or raise --labelled-fraction")
    index = build_search_index(reference)
    squared, _ = search_batched(index, queries, k, batch_size=batch_size)
    # faiss returns squared L2 distances, which rounding can leave slightly negative
    return np.sqrt(np.maximum(squared, 0.0)).mean(axis=1).astype(np.float32)


def efficiency_at_false_positive_rates(scores: np.ndarray, is_anomaly: np.ndarray, rates: Sequence[float]) -> dict[float, dict[str, float]]:
    """Find, for each false-positive rate, the threshold and the share of anomalies above it.

    The threshold is the (1 - rate) quantile of the normal events' scores (events scoring
    strictly above it are flagged), so at most ``rate`` of the normal events are flagged.

    Returns:
        {rate: {"threshold", "efficiency", "false_positive_rate"}} with the achieved rate.
    """
    normal = np.sort(scores[~is_anomaly])
    anomalous = scores[is_anomaly]
    result = {}
    for rate in rates:
        if not 0.0 < rate < 1.0:
            raise ConfigError(f"False-positive rates must lie strictly between 0 and 1 (got {rate})")
        allowed = int(np.floor(rate * len(normal)))
        threshold = float(normal[len(normal) - allowed - 1]) if allowed < len(normal) else float("-inf")
        result[float(rate)] = {
            "threshold": threshold,
            "efficiency": float((anomalous > threshold).mean()),
            "false_positive_rate": float((normal > threshold).mean()),
        }
    return result


def _per_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Per class of the scored events: events, anomalous or not, and the median score; largest first."""
    grouped = frame.groupby("y", sort=True).agg(events=("score", "size"), anomalous=("is_anomaly", "first"), median_score=("score", "median"))
    table = grouped.reset_index().rename(columns={"y": "class_id"})
    return table.sort_values(["events", "class_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def run_anomaly(
    *,
    embeddings: str | Path,
    out: str | Path,
    k: int = 10,
    top: int = 99,
    labelled_fraction: float = 0.5,
    false_positive_rates: Sequence[float] = DEFAULT_FALSE_POSITIVE_RATES,
    topology: str | Path | None = None,
) -> dict:
    """Score the unlabelled events by kNN distance to the labelled top-class events and evaluate.

    Args:
        embeddings: folder written by ``pmse-graph embed``.
        out: results folder, created when missing.
        k: neighbours averaged in the score (default 10).
        top: number of largest classes treated as known (default 99).
        labelled_fraction: share of events treated as labelled (default 0.5).
        false_positive_rates: rates at which the efficiency is reported (default 1%, 5%, 10%).
        topology: ``topology.csv`` naming the classes; default the first table recorded in the
            embeddings' metadata, if it exists. Without one the tables keep bare class ids.

    Returns:
        The content of ``metrics.json``.

    Raises:
        ConfigError: invalid ``k`` or rates.
        DataError: invalid embeddings, or no normal or no anomalous unlabelled events.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = read_embeddings(embeddings)
    names = load_class_names(topology, arrays.metadata)
    labelled, task, index = labelled_task(arrays.event_id, arrays.y, labelled_fraction=labelled_fraction, top=top)

    reference = arrays.vectors[labelled & (index >= 0)]
    unlabelled = ~labelled
    if not unlabelled.any():
        raise DataError(f"No unlabelled events among {len(arrays.event_id)}. Lower --labelled-fraction")
    scores = knn_distance_scores(reference, arrays.vectors[unlabelled], k=k)

    y = arrays.y[unlabelled]
    known = y >= 0
    is_anomaly = index[unlabelled] < 0
    frame = pd.DataFrame({"event_id": arrays.event_id[unlabelled], "y": y, "is_anomaly": is_anomaly & known, "known_label": known, "score": scores})
    atomic_write_frame(add_tree_columns(frame, names, {"y": "tree"}), out / "scores.parquet")
    atomic_write_frame(add_tree_columns(_per_class(frame[known]), names, {"class_id": "tree"}), out / "per_class.csv")

    evaluated_scores, evaluated_anomaly = scores[known], is_anomaly[known]
    anomalies, normal = int(evaluated_anomaly.sum()), int((~evaluated_anomaly).sum())
    if anomalies == 0 or normal == 0:
        raise DataError(
            f"The ROC needs both kinds of unlabelled events (got {anomalies} outside and {normal} inside the top {task.num_classes} classes). "
            "Lower --top so that some classes count as anomalies, or add events"
        )
    auc = float(roc_auc_score(evaluated_anomaly, evaluated_scores))
    fpr, tpr, _ = roc_curve(evaluated_anomaly, evaluated_scores)
    points = efficiency_at_false_positive_rates(evaluated_scores, evaluated_anomaly, false_positive_rates)
    plot_roc(fpr, tpr, out / "roc.png", auc=auc, marked={rate: point["efficiency"] for rate, point in points.items()})

    metrics = {
        "embeddings": str(Path(embeddings).resolve()),
        "k": k,
        "top": top,
        "known_classes": task.num_classes,
        "topology": None if names is None else names.source,
        "labelled_fraction": labelled_fraction,
        "reference_events": int(len(reference)),
        "scored_events": int(len(scores)),
        "anomalous_events": anomalies,
        "normal_events": normal,
        "unknown_label_events": int((~known).sum()),
        "roc_auc": auc,
        "operating_points": [{"false_positive_rate_target": rate, **point} for rate, point in points.items()],
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    logger.info("anomaly ROC AUC %.4f on %d anomalous and %d normal events", auc, anomalies, normal)
    return metrics
