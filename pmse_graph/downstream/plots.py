"""Plots of embeddings: a t-SNE map of the largest truth classes, and shared figure helpers.

:func:`tsne_map` computes the 2-d t-SNE coordinates (scikit-learn, after PCA to at most 50
dimensions) of a random subsample of the events of the ``top`` most common classes, and
:func:`plot_class_map` draws them coloured by class. :func:`save_figure` writes any matplotlib
figure atomically as PNG; other downstream plots reuse it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from pmse_graph.atomic import atomic_path
from pmse_graph.errors import DataError  # noqa: E402

log = logging.getLogger(__name__)

# t-SNE input dimension after PCA; a common choice that keeps most variance and cuts run time
TSNE_PCA_DIM = 50
# t-SNE needs perplexity < number of points; below this many points no map is drawn
MIN_TSNE_POINTS = 5


def save_figure(figure: plt.Figure, path: str | os.PathLike[str], *, dpi: int = 130) -> Path:
    """Write ``figure`` as PNG through a temporary file and a rename, then close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp_path:
            figure.savefig(tmp_path, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def top_classes(classes: np.ndarray, top: int) -> np.ndarray:
    """Return the ``top`` most common known class ids (>= 0), most common first, ties by id."""
    values, counts = np.unique(np.asarray(classes)[np.asarray(classes) >= 0], return_counts=True)
    order = np.lexsort((values, -counts))
    return values[order][:top]


def tsne_map(vectors: np.ndarray, classes: np.ndarray, *, top: int = 20, max_points: int = 5_000, seed: int = 0) -> pd.DataFrame | None:
    """Compute t-SNE coordinates of a subsample of the events of the ``top`` largest classes.

    Args:
        vectors: ``(N, D)`` embeddings.
        classes: ``(N,)`` truth class ids, -1 when unknown.
        top: Number of classes shown (default 20).
        max_points: Events embedded at most (default 5,000; t-SNE cost grows as N log N).
        seed: Seed of the subsample and of t-SNE (default 0).

    Returns:
        A frame with ``row`` (index into ``vectors``), ``class``, ``tsne_x``, ``tsne_y``, or None
        (logged) when fewer than ``MIN_TSNE_POINTS`` events have one of those classes.
    """
    classes = np.asarray(classes)
    if len(classes) != len(vectors):
        raise DataError(f"Expected one class per embedding (got {len(classes)} classes for {len(vectors)} vectors)")
    shown = top_classes(classes, top)
    rows = np.flatnonzero(np.isin(classes, shown))
    if len(rows) < MIN_TSNE_POINTS:
        log.info("t-SNE map skipped: %d events with a known class (at least %d needed)", len(rows), MIN_TSNE_POINTS)
        return None
    rng = np.random.default_rng(seed)
    if len(rows) > max_points:
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))

    points = np.asarray(vectors[rows], dtype=np.float32)
    if points.shape[1] > TSNE_PCA_DIM and len(points) > TSNE_PCA_DIM:
        points = PCA(n_components=TSNE_PCA_DIM, random_state=seed).fit_transform(points)
    perplexity = float(min(30.0, (len(points) - 1) / 3))
    coordinates = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    return pd.DataFrame({"row": rows, "class": classes[rows], "tsne_x": coordinates[:, 0], "tsne_y": coordinates[:, 1]})


def plot_class_map(
    frame: pd.DataFrame, *, path: str | os.PathLike[str], class_names: Mapping[int, str] | None = None, title: str = "t-SNE of event embeddings"
) -> Path:
    """Draw the output of :func:`tsne_map` coloured by class (legend in class-size order) and save it as PNG."""
    figure, axes = plt.subplots(figsize=(9, 7))
    classes = top_classes(frame["class"].to_numpy(), len(frame))
    colours = plt.get_cmap("tab20" if len(classes) <= 20 else "gist_ncar", max(len(classes), 1))
    for number, value in enumerate(classes):
        subset = frame[frame["class"] == value]
        label = class_names.get(int(value), str(value)) if class_names else f"class {value}"
        axes.scatter(subset["tsne_x"], subset["tsne_y"], s=4, color=colours(number), label=f"{label} ({len(subset)})", rasterized=True)
    axes.set_xlabel("t-SNE 1")
    axes.set_ylabel("t-SNE 2")
    axes.set_title(f"{title}: top {len(classes)} classes, {len(frame)} events")
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, markerscale=3, frameon=False)
    return save_figure(figure, path)
