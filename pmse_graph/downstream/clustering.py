"""The clustering run behind ``pmse-graph cluster``: cluster, score, tabulate and plot embeddings.

:func:`cluster_embeddings` writes into its output folder:

* ``assignments.parquet``: ``event_id``, ``cluster`` (-1 for noise and skipped events), ``y``, ``y_fs``;
* ``metrics.json``: settings, timings, cluster counts and the quality against the decay-tree
  (``y``) and final-state (``y_fs``) classes, with ``all_noise`` set when HDBSCAN found nothing;
* ``per_class.csv``: for every decay-tree class, the clusters that contain it (see
  :func:`pmse_graph.downstream.cluster_metrics.class_spread`), with a ``tree`` column when a
  topology table names the classes;
* ``centroids.npy`` (k-means only); for two-level k-means also ``coarse_centroids.npy`` (the
  group centroids) and ``centroid_group.npy`` (the group of every centroid);
* ``tsne_top20.png`` with ``tsne_top20.csv``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from pmse_graph.config import atomic_write_text
from pmse_graph.downstream.cluster_metrics import class_spread, cluster_quality
from pmse_graph.downstream.density import fit_hdbscan
from pmse_graph.downstream.embeddings import EmbeddingStore, save_npy_atomic, save_parquet_atomic
from pmse_graph.downstream.kmeans import DEFAULT_PROBE, KMeansMethod, NonfinitePolicy, assign_clusters, compare_with_flat, find_nonfinite, fit_kmeans
from pmse_graph.downstream.class_names import ClassNames, add_tree_columns, load_class_names
from pmse_graph.downstream.plots import plot_class_map, top_classes, tsne_map
from pmse_graph.errors import ConfigError, DataError

log = logging.getLogger(__name__)

ClusterMethod = Literal["kmeans", "hdbscan"]
ASSIGNMENTS_NAME = "assignments.parquet"
METRICS_NAME = "metrics.json"
PER_CLASS_NAME = "per_class.csv"
CENTROIDS_NAME = "centroids.npy"
COARSE_CENTROIDS_NAME = "coarse_centroids.npy"
CENTROID_GROUP_NAME = "centroid_group.npy"
TSNE_TOP = 20
TSNE_PNG_NAME = f"tsne_top{TSNE_TOP}.png"
TSNE_CSV_NAME = f"tsne_top{TSNE_TOP}.csv"


def cluster_embeddings(
    embeddings: str | os.PathLike[str] | EmbeddingStore,
    *,
    out_dir: str | os.PathLike[str],
    method: ClusterMethod = "kmeans",
    k: int | None = None,
    seed: int = 0,
    kmeans_method: KMeansMethod = "auto",
    niter: int | None = None,
    refine_iterations: int = 0,
    probe: int = DEFAULT_PROBE,
    max_points_per_centroid: int = 256,
    compare_sample: int = 50_000,
    min_cluster_size: int = 20,
    min_samples: int = 10,
    max_fit_points: int = 200_000,
    nonfinite: NonfinitePolicy = "raise",
    tsne_points: int = 5_000,
    topology: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Cluster embeddings and write assignments, metrics, the per-class table and plots.

    Args:
        embeddings: An embedding folder, a ``.npy`` file, or an open store.
        out_dir: Output folder, created when missing.
        method: ``"kmeans"`` (default) or ``"hdbscan"``.
        k: Number of k-means clusters (required for k-means, unused by HDBSCAN).
        seed: Seed of sampling, faiss and t-SNE (default 0).
        kmeans_method: ``"auto"``, ``"flat"`` or ``"two_level"`` (see :func:`fit_kmeans`).
        niter: k-means iterations (default 20 for flat, 10 at each level of two-level).
        refine_iterations: Lloyd iterations after two-level training (default 0).
        probe: Coarse groups searched per event when assigning to two-level centroids (default 2).
        max_points_per_centroid: k-means training events per centroid (default 256).
        compare_sample: Events of the two-level versus flat comparison; 0 skips it (default 50,000).
        min_cluster_size: HDBSCAN smallest cluster (default 20).
        min_samples: HDBSCAN core-point neighbours (default 10).
        max_fit_points: Events HDBSCAN clusters itself (default 200,000); see
            :func:`pmse_graph.downstream.density.fit_hdbscan` for the others.
        nonfinite: ``"raise"`` on NaN or infinite embeddings (default) or ``"drop"`` them (cluster -1, counted).
        tsne_points: Events in the t-SNE map; 0 skips it (default 5,000).
        topology: ``topology.csv`` naming the decay-tree classes in the per-class table and the
            t-SNE legend; default the first table recorded in the embeddings' metadata, if it
            exists. Without one the outputs keep bare class ids.

    Returns:
        The content of ``metrics.json``.
    """
    if method not in get_args(ClusterMethod):
        raise ConfigError(f"Expected a clustering method in {get_args(ClusterMethod)} (got {method!r})")
    if method == "kmeans" and k is None:
        raise ConfigError("k-means needs the number of clusters: pass k (--k)")
    store = embeddings if isinstance(embeddings, EmbeddingStore) else EmbeddingStore.open(embeddings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = load_class_names(topology, store.metadata)
    skipped = find_nonfinite(store, policy=nonfinite)
    summary: dict[str, Any] = {
        "embeddings": None if store.root is None else str(store.root),
        "embedding_metadata": store.metadata,
        "method": method,
        "seed": seed,
        "num_events": store.num_events,
        "dim": store.dim,
        "nonfinite_policy": nonfinite,
        "num_nonfinite_skipped": int(len(skipped)),
        "topology": None if names is None else names.source,
    }

    # cluster
    if method == "kmeans":
        result = fit_kmeans(
            store, k=k, method=kmeans_method, niter=niter, seed=seed,
            max_points_per_centroid=max_points_per_centroid, refine_iterations=refine_iterations, probe=probe, exclude_rows=skipped,
        )
        assignment = assign_clusters(store, result.centroids, tree=result.tree, probe=probe, exclude_rows=skipped)
        cluster = assignment.cluster
        save_npy_atomic(out / CENTROIDS_NAME, result.centroids)
        if result.tree is not None:
            save_npy_atomic(out / COARSE_CENTROIDS_NAME, result.tree.coarse)
            save_npy_atomic(out / CENTROID_GROUP_NAME, result.tree.group)
        sizes = np.bincount(cluster[cluster >= 0], minlength=k)
        summary["kmeans"] = {
            "k": k,
            "method": result.method,
            "niter": result.niter,
            "refine_iterations": refine_iterations if result.method == "two_level" else 0,
            "groups": None if result.tree is None else len(result.tree.coarse),
            "train_points": result.train_points,
            "train_seconds": result.seconds,
            "train_objective": result.train_objective,
            "objective": assignment.objective,
            "assignment_search": assignment.search,
            "empty_clusters": int((sizes == 0).sum()),
            "largest_cluster": int(sizes.max()) if len(sizes) else 0,
        }
        if result.method == "two_level" and compare_sample > 0:
            try:
                comparison = compare_with_flat(store, k=k, sample_points=compare_sample, niter=niter, seed=seed, exclude_rows=skipped)
            except DataError as error:
                # the clusters are made; only the optional check is impossible on such data
                log.warning("skipped the comparison with flat k-means: %s", error)
                comparison = {"skipped": str(error)}
            summary["kmeans"]["objective_vs_flat"] = comparison
        summary["all_noise"] = False
    else:
        if k is not None:
            log.info("k=%d is not used by HDBSCAN, which finds the number of clusters itself", k)
        result = fit_hdbscan(
            store, min_cluster_size=min_cluster_size, min_samples=min_samples, max_fit_points=max_fit_points, seed=seed, exclude_rows=skipped
        )
        cluster = result.cluster
        summary["hdbscan"] = {
            "min_cluster_size": min_cluster_size,
            "min_samples": min_samples,
            "fit_points": result.fit_points,
            "seconds": result.seconds,
            "num_clusters": result.num_clusters,
            "noise_fraction": result.noise_fraction,
        }
        summary["all_noise"] = result.all_noise

    # assignments and quality
    labels = store.labels()
    labels["cluster"] = cluster
    save_parquet_atomic(out / ASSIGNMENTS_NAME, labels[["event_id", "cluster", "y", "y_fs"]])
    summary["quality"] = {
        "decay_tree": cluster_quality(labels["y"].to_numpy(), cluster),
        "final_state": cluster_quality(labels["y_fs"].to_numpy(), cluster),
    }
    spread = add_tree_columns(class_spread(labels["y"].to_numpy(), cluster), names, {"class": "tree"})
    spread_path = out / PER_CLASS_NAME
    atomic_write_text(spread_path, spread.to_csv(index=False))

    # picture of the largest classes
    summary["tsne_png"] = _write_tsne(store, labels["y"].to_numpy(), skipped, out=out, max_points=tsne_points, seed=seed, names=names)
    atomic_write_text(out / METRICS_NAME, json.dumps(summary, indent=2, default=_json_default) + "\n")
    return summary


def _write_tsne(
    store: EmbeddingStore, classes: np.ndarray, skipped: np.ndarray, *, out: Path, max_points: int, seed: int, names: ClassNames | None
) -> str | None:
    if max_points <= 0:
        return None
    usable = np.ones(len(classes), bool)
    usable[skipped] = False
    rows = np.flatnonzero(usable & np.isin(classes, top_classes(classes[usable], TSNE_TOP)))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_points, replace=False))
    vectors, _ = store.load(rows=rows)
    frame = tsne_map(vectors, classes[rows], top=TSNE_TOP, max_points=max_points, seed=seed)
    if frame is None:
        return None
    frame["row"] = rows[frame["row"].to_numpy()]
    atomic_write_text(out / TSNE_CSV_NAME, frame.to_csv(index=False))
    legend = None if names is None else {int(value): names.label(value) for value in np.unique(frame["class"])}
    return str(plot_class_map(frame, path=out / TSNE_PNG_NAME, class_names=legend, title="t-SNE of event embeddings (decay-tree classes)"))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
