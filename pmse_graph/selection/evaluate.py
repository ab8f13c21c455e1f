"""Precision, recall and F1 of the selection per class, along a tightness scan, and the PR plot.

Precision of a class is the share of the events predicted as that class that truly are.
Recall is the share of the class's true events predicted as it, so events that are not
selected count against recall. Recall at 99% precision is the highest recall among the
scanned tightness values whose precision reaches 0.99 (``None`` when none does).
"""

from __future__ import annotations

import os

import numpy as np

from pmse_graph.atomic import atomic_path
from pmse_graph.selection.selection import CLASSES, OTHER, UNKNOWN

TARGET_PRECISION = 0.99


def class_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, dict]:
    """Return per-class metrics of predicted against true class names.

    Each class gets ``precision``, ``recall`` and ``f1`` (None when undefined), the counts
    ``true``, ``predicted`` and ``correct``, and ``wrong_by_truth``. That last one counts the
    events predicted as the class whose truth is another class or ``other``, by truth class.
    """
    metrics: dict[str, dict] = {}
    for name in CLASSES:
        is_true = truth == name
        is_predicted = predicted == name
        correct = int((is_true & is_predicted).sum())
        wrong = {other: int((is_predicted & (truth == other)).sum()) for other in CLASSES + (OTHER,) if other != name}
        precision = correct / int(is_predicted.sum()) if is_predicted.any() else None
        recall = correct / int(is_true.sum()) if is_true.any() else None
        f1 = None
        if precision is not None and recall is not None and precision + recall > 0:
            f1 = 2.0 * precision * recall / (precision + recall)
        metrics[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "true": int(is_true.sum()),
            "predicted": int(is_predicted.sum()),
            "correct": correct,
            "wrong_by_truth": wrong,
        }
    return metrics


def class_fractions(truth: np.ndarray) -> dict[str, float]:
    """Return the share of each truth class (the four classes and ``other``) in the sample."""
    total = max(truth.shape[0], 1)
    return {name: float((truth == name).sum()) / total for name in CLASSES + (OTHER,)}


def recall_at_precision(scan: list[dict], *, target: float = TARGET_PRECISION) -> dict[str, dict[str, float | None]]:
    """Return per class the highest recall with precision >= ``target`` along ``scan`` and its tightness.

    Args:
        scan: one entry per tightness, ``{"tightness": t, "classes": class_metrics(...)}``.
        target: the precision to reach (default 0.99).
    """
    result: dict[str, dict[str, float | None]] = {}
    for name in CLASSES:
        best: dict[str, float | None] = {"recall": None, "tightness": None}
        for point in scan:
            entry = point["classes"][name]
            if entry["precision"] is None or entry["recall"] is None or entry["precision"] < target:
                continue
            if best["recall"] is None or entry["recall"] > best["recall"]:
                best = {"recall": entry["recall"], "tightness": point["tightness"]}
        result[name] = best
    return result


def precision_target(scan: list[dict], *, fractions: dict[str, float], target: float = TARGET_PRECISION) -> dict:
    """Report whether each class reaches ``target`` precision and, when not, what limits it.

    For each class, this finds the scan point with the highest precision (the tightest one
    on a tie). It gives that precision, its tightness and recall, and the share of that
    point's predicted events that truly belong to each other class (``contamination``).
    ``lines`` (and ``statement``, the same joined into one line) state this in prose.
    They name the classes that reach the target, or say plainly that none does, then list the
    highest precision of each class with its two main contaminants and the sample's class
    fractions.

    Args:
        scan: one entry per tightness, ``{"tightness": t, "classes": class_metrics(...)}``.
        fractions: the sample's class fractions (:func:`class_fractions`).
        target: the precision to reach (default 0.99).
    """
    classes: dict[str, dict] = {}
    for name in CLASSES:
        best: dict = {"reached": False, "best_precision": None, "tightness": None, "recall": None, "contamination": {}}
        for point in scan:
            entry = point["classes"][name]
            if entry["precision"] is None:
                continue
            if best["best_precision"] is None or entry["precision"] >= best["best_precision"]:
                wrong = entry.get("wrong_by_truth", {})
                predicted = max(int(entry["predicted"]), 1)
                best = {
                    "reached": entry["precision"] >= target,
                    "best_precision": entry["precision"],
                    "tightness": point["tightness"],
                    "recall": entry["recall"],
                    "contamination": {other: count / predicted for other, count in wrong.items() if count},
                }
        classes[name] = best
    reached = [name for name in CLASSES if classes[name]["reached"]]
    lines = [precision_target_opening(reached, target)]
    for name in CLASSES:
        entry = classes[name]
        if entry["best_precision"] is None:
            lines.append(f"{name}: never predicted.")
            continue
        main = sorted(entry["contamination"].items(), key=lambda item: -item[1])[:2]
        wrong = ", ".join(f"{share:.1%} {other}" for other, share in main) or "none"
        absent = " (the sample has no events of this class)" if fractions.get(name, 1.0) == 0.0 else ""
        lines.append(
            f"{name}: highest precision {entry['best_precision']:.3f} at tightness {entry['tightness']:.2f}; wrongly predicted: {wrong}{absent}."
        )
    lines.append("Class fractions of the sample: " + ", ".join(f"{name} {share:.3f}" for name, share in fractions.items()) + ".")
    return {"target": target, "reached_by": reached, "classes": classes, "lines": lines, "statement": " ".join(lines)}


def precision_target_opening(reached: list[str], target: float) -> str:
    """Return the sentence stating which classes reach ``target`` precision, or that none does."""
    if not reached:
        return f"No class reaches {target:.0%} precision at any tightness evaluated."
    verb = "reaches" if len(reached) == 1 else "reach"
    return f"{', '.join(reached)} {verb} {target:.0%} precision; the other classes do not."


def has_truth(truth: np.ndarray) -> bool:
    """True when the truth classes are known (a topology table was given)."""
    return truth.shape[0] > 0 and not bool((truth == UNKNOWN).all())


def plot_precision_recall(scan: list[dict], path: str | os.PathLike[str], *, working_point: float | None = None) -> None:
    """Write the precision-recall curve of each class along the tightness scan as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.0, 4.5))
    for name in CLASSES:
        points = [(p["classes"][name]["recall"], p["classes"][name]["precision"], p["tightness"]) for p in scan]
        points = [point for point in points if point[0] is not None and point[1] is not None]
        if not points:
            continue
        recall, precision, tightness = (np.array(values, dtype=float) for values in zip(*points))
        line = axes.plot(recall, precision, marker="o", markersize=3, label=name)[0]
        if working_point is not None:
            at = np.flatnonzero(np.isclose(tightness, working_point))
            if at.size:
                axes.plot(recall[at], precision[at], marker="*", markersize=12, color=line.get_color())
    axes.axhline(TARGET_PRECISION, color="grey", linestyle="--", linewidth=0.8, label="99% precision")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.set_title("Cut-based selection, tightness scan")
    axes.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    try:
        with atomic_path(path) as tmp_path:
            figure.savefig(tmp_path, dpi=120)
    finally:
        plt.close(figure)
