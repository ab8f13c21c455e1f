"""PNG plots of the classification and anomaly results.

* :func:`plot_confusion`: row-normalised confusion matrix (share of each true class).
* :func:`plot_precision_recall`: one-vs-rest precision-recall curves of chosen classes.
* :func:`plot_roc`: ROC curve of an anomaly score with the fixed false-positive rates marked.

Every function writes the file atomically (temporary name, then rename) and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pmse_graph.downstream.plots import save_figure as save_png  # noqa: E402


def save_figure(figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG to ``path`` atomically, then close it."""
    return save_png(figure, path, dpi=110)


def plot_confusion(matrix: np.ndarray, class_ids: Sequence[int], path: str | Path, *, title: str, labels: Sequence[str] | None = None) -> Path:
    """Draw the confusion matrix with each row divided by its true-class count.

    Tick labels (``labels``, default the class ids) are drawn only up to 30 classes; beyond
    that the axes show class indices.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    support = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, support, out=np.zeros_like(matrix), where=support > 0)
    size = min(14.0, 4.0 + 0.12 * len(class_ids))
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(shares, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    if len(class_ids) <= 30:
        ticks = np.arange(len(class_ids))
        names = list(labels) if labels is not None else [str(c) for c in class_ids]
        axes.set_xticks(ticks, names, rotation=90, fontsize=7)
        axes.set_yticks(ticks, names, fontsize=7)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    return save_figure(figure, path)


def plot_precision_recall(
    curves: dict[int | str, tuple[np.ndarray, np.ndarray]], path: str | Path, *, title: str, min_precision: float, min_recall: float
) -> Path:
    """Draw one precision-recall curve per class in ``curves``: {class id or label: (precision, recall)}."""
    figure, axes = plt.subplots(figsize=(6.5, 5))
    for class_id, (precision, recall) in curves.items():
        label = class_id if isinstance(class_id, str) else f"class {class_id}"
        axes.plot(recall, precision, label=label, linewidth=1.2)
    axes.axhline(min_precision, color="grey", linestyle="--", linewidth=0.8)
    axes.axvline(min_recall, color="grey", linestyle=":", linewidth=0.8)
    axes.set_xlim(0, 1.01)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(title)
    if curves:
        axes.legend(fontsize=7, loc="lower left")
    return save_figure(figure, path)


def plot_roc(false_positive_rate: np.ndarray, true_positive_rate: np.ndarray, path: str | Path, *, auc: float, marked: dict[float, float]) -> Path:
    """Draw a ROC curve and mark the efficiency at each fixed false-positive rate in ``marked``."""
    figure, axes = plt.subplots(figsize=(6, 5))
    axes.plot(false_positive_rate, true_positive_rate, label=f"kNN distance (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="random")
    for rate, efficiency in marked.items():
        axes.plot([rate], [efficiency], marker="o", color="black", markersize=4)
        axes.annotate(f"{efficiency:.2f} at {rate:.0%}", (rate, efficiency), textcoords="offset points", xytext=(6, -10), fontsize=7)
    axes.set_xscale("log")
    axes.set_xlim(1e-3, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false-positive rate (in-class events flagged)")
    axes.set_ylabel("anomaly efficiency")
    axes.legend(loc="lower right", fontsize=8)
    return save_figure(figure, path)
