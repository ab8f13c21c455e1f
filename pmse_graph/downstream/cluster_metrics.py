"""Cluster quality against truth classes: purity, NMI, ARI, homogeneity, completeness, per-class spread.

Events whose truth class is unknown (-1) are left out of every metric and counted. Noise events
(cluster -1, from HDBSCAN) follow a policy. With ``"exclude"`` only clustered events are scored
and the noise share is reported beside the metrics. With ``"as_cluster"`` noise is scored as one
more cluster.
NMI uses the arithmetic mean of the two entropies (scikit-learn's default), which makes it equal
to the V-measure, the harmonic mean of homogeneity and completeness.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn import metrics

from pmse_graph.errors import ConfigError, DataError

NoisePolicy = Literal["exclude", "as_cluster"]
NOISE = -1


def _contingency(classes: np.ndarray, clusters: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Return the sparse (class, cluster) count matrix with its class and cluster values."""
    class_values, class_index = np.unique(classes, return_inverse=True)
    cluster_values, cluster_index = np.unique(clusters, return_inverse=True)
    counts = scipy.sparse.coo_matrix(
        (np.ones(len(classes), np.int64), (class_index, cluster_index)), shape=(len(class_values), len(cluster_values))
    ).tocsr()
    counts.sum_duplicates()
    return counts, class_values, cluster_values


def purity(classes: np.ndarray, clusters: np.ndarray) -> float:
    """Return the share of events that belong to the most common class of their cluster."""
    if len(classes) == 0:
        return float("nan")
    counts, _, _ = _contingency(np.asarray(classes), np.asarray(clusters))
    return float(counts.max(axis=0).toarray().sum() / len(classes))


def _select(classes: np.ndarray, clusters: np.ndarray, noise: NoisePolicy) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    classes = np.asarray(classes, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if classes.shape != clusters.shape or classes.ndim != 1:
        raise DataError(f"Expected class and cluster arrays of equal 1-d shape (got {classes.shape} and {clusters.shape})")
    if noise not in get_args(NoisePolicy):
        raise ConfigError(f"Expected a noise policy in {get_args(NoisePolicy)} (got {noise!r})")
    known = classes >= 0
    is_noise = clusters == NOISE
    counts = {
        "num_events": int(len(classes)),
        "num_unknown_class": int((~known).sum()),
        "num_noise": int(is_noise.sum()),
        "noise_fraction": float(is_noise.mean()) if len(classes) else float("nan"),
    }
    keep = known & ~is_noise if noise == "exclude" else known
    return classes[keep], clusters[keep], counts


def cluster_quality(classes: np.ndarray, clusters: np.ndarray, *, noise: NoisePolicy = "exclude") -> dict[str, Any]:
    """Score a clustering against truth classes.

    Args:
        classes: ``(N,)`` truth class ids, -1 when unknown.
        clusters: ``(N,)`` cluster ids, -1 for noise.
        noise: How noise events are scored (see the module docstring; default ``"exclude"``).

    Returns:
        A JSON-ready dict: ``purity``, ``nmi``, ``ari``, ``homogeneity``, ``completeness``
        (None when no event is scored), ``num_clusters`` (non-empty clusters, noise not
        counted), ``num_classes``, ``num_scored`` and the event counts of unknown class and noise.
    """
    scored_classes, scored_clusters, summary = _select(classes, clusters, noise)
    summary.update(
        noise_policy=noise,
        num_scored=int(len(scored_classes)),
        num_clusters=int(len(np.unique(np.asarray(clusters)[np.asarray(clusters) != NOISE]))),
        num_classes=int(len(np.unique(scored_classes))),
    )
    if len(scored_classes) == 0:
        summary.update(purity=None, nmi=None, ari=None, homogeneity=None, completeness=None)
        return summary

    homogeneity, completeness, _ = metrics.homogeneity_completeness_v_measure(scored_classes, scored_clusters)
    summary.update(
        purity=purity(scored_classes, scored_clusters),
        nmi=float(metrics.normalized_mutual_info_score(scored_classes, scored_clusters)),
        ari=float(metrics.adjusted_rand_score(scored_classes, scored_clusters)),
        homogeneity=float(homogeneity),
        completeness=float(completeness),
    )
    return summary


def class_spread(classes: np.ndarray, clusters: np.ndarray, *, top: int = 3) -> pd.DataFrame:
    """Tabulate, for every known class, which clusters contain its events.

    Args:
        classes: ``(N,)`` truth class ids, -1 when unknown (left out).
        clusters: ``(N,)`` cluster ids, -1 for noise.
        top: Number of largest clusters listed per class (default 3).

    Returns:
        One row per class, largest class first: ``class``, ``events``, ``num_clusters``
        (clusters containing at least one of its events, noise not counted), ``noise_share``, and
        ``cluster_1``, ``share_1``, ... for its ``top`` largest clusters (-1 and 0.0 when fewer).
    """
    classes = np.asarray(classes, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    known = classes >= 0
    columns = ["class", "events", "num_clusters", "noise_share"] + [f"{name}_{rank}" for rank in range(1, top + 1) for name in ("cluster", "share")]
    if not known.any():
        return pd.DataFrame(columns=columns)
    counts, class_values, cluster_values = _contingency(classes[known], clusters[known])
    totals = np.asarray(counts.sum(axis=1)).ravel()
    noise_column = np.flatnonzero(cluster_values == NOISE)
    noise_counts = counts[:, noise_column].toarray().ravel() if len(noise_column) else np.zeros(len(class_values), np.int64)
    if len(noise_column):
        counts = counts.copy()
        counts.data[counts.indices == noise_column[0]] = 0
        counts.eliminate_zeros()

    frame = pd.DataFrame({"class": class_values, "events": totals, "num_clusters": np.diff(counts.indptr), "noise_share": noise_counts / totals})
    # per class the `top` largest entries of its sparse row, a loop over classes (not events)
    best_cluster = np.full((len(class_values), top), -1, np.int64)
    best_share = np.zeros((len(class_values), top))
    for row in range(len(class_values)):
        start, stop = counts.indptr[row], counts.indptr[row + 1]
        values, columns_of_row = counts.data[start:stop], counts.indices[start:stop]
        order = np.argsort(-values, kind="stable")[:top]
        best_cluster[row, : len(order)] = cluster_values[columns_of_row[order]]
        best_share[row, : len(order)] = values[order] / totals[row]
    for rank in range(top):
        frame[f"cluster_{rank + 1}"] = best_cluster[:, rank]
        frame[f"share_{rank + 1}"] = best_share[:, rank]
    return frame.sort_values(["events", "class"], ascending=[False, True], kind="stable").reset_index(drop=True)[columns]
