"""HDBSCAN clustering of event embeddings with bounded memory.

HDBSCAN (fast_hdbscan) runs on the full-dimensional embeddings of at most ``max_fit_points``
randomly sampled events. Every other event then takes the cluster of its nearest fitted event
if it lies within the cluster's reach: the largest core distance (distance to the
``min_samples``-th nearest other fitted event, as fast_hdbscan 0.3.4 defines it for
``min_samples >= 2``; it sets the core distance to 0 for 1, where the nearest other event is
used instead) among the cluster's fitted events.
Otherwise it is noise, so an event next to noise, or far outside every cluster, stays noise. The
searches (:mod:`pmse_graph.downstream.neighbours`) are exact up to
``EXACT_SEARCH_MAX_POINTS`` fitted events and go through a faiss IVF index above. Above 30
dimensions fast_hdbscan builds an approximate kNN graph with ``pynndescent``. HDBSCAN labels
noise -1; a result with no cluster at all is returned with ``all_noise=True`` instead of
raising, so that callers can report it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from pmse_graph.downstream.embeddings import EmbeddingStore, describe_event_ids, nonfinite_rows
from pmse_graph.downstream.kmeans import sample_rows
from pmse_graph.downstream.neighbours import build_search_index, search_batched
from pmse_graph.errors import ConfigError, DataError, MissingDependencyError

log = logging.getLogger(__name__)

# nearest-neighbour labelling searches all fitted events up to this count, an IVF index above
EXACT_SEARCH_MAX_POINTS = 50_000
# fast_hdbscan switches to a pynndescent kNN graph above this dimension (fast_hdbscan 0.3.4)
KDTREE_MAX_DIM = 30


@dataclass
class DensityResult:
    """HDBSCAN labels of every event.

    Attributes:
        cluster: ``(N,)`` int64 cluster index, -1 for noise and for skipped non-finite events.
        num_clusters: Number of clusters found.
        noise_fraction: Share of the assigned events labelled noise.
        all_noise: True when HDBSCAN found no cluster.
        fit_points: Number of events HDBSCAN itself clustered.
        seconds: Wall-clock time of the fit and the labelling.
    """

    cluster: np.ndarray
    num_clusters: int
    noise_fraction: float
    all_noise: bool
    fit_points: int
    seconds: float


def fit_hdbscan(
    data: EmbeddingStore | np.ndarray,
    *,
    min_cluster_size: int = 20,
    min_samples: int = 10,
    max_fit_points: int = 200_000,
    seed: int = 0,
    batch_size: int = 65_536,
    exclude_rows: np.ndarray | None = None,
) -> DensityResult:
    """Cluster events with HDBSCAN on a subsample and label the rest by nearest neighbour.

    Args:
        data: An :class:`EmbeddingStore` or an ``(N, D)`` array.
        min_cluster_size: Smallest cluster HDBSCAN keeps (default 20).
        min_samples: Neighbours that define a core point (default 10).
        max_fit_points: Events HDBSCAN clusters itself (default 200,000).
        seed: Seed of the subsample (default 0).
        batch_size: Events labelled per nearest-neighbour search (default 65,536).
        exclude_rows: Global rows that get -1 without a search (non-finite events).

    Raises:
        ConfigError: on a parameter below 1.
        DataError: when fewer than ``max(min_cluster_size, min_samples + 1)`` events are usable,
            or the sample has NaN rows.
    """
    if min_cluster_size < 2 or min_samples < 1 or max_fit_points < 2:
        raise ConfigError(f"Expected min_cluster_size >= 2, min_samples >= 1, max_fit_points >= 2 (got {min_cluster_size}, {min_samples}, {max_fit_points})")
    try:
        import fast_hdbscan
    except ImportError as exc:
        raise MissingDependencyError("fast-hdbscan", "HDBSCAN clustering") from exc

    store = data if isinstance(data, EmbeddingStore) else EmbeddingStore.from_array(data)
    usable = store.num_events - (0 if exclude_rows is None else len(exclude_rows))
    needed = max(min_cluster_size, min_samples + 1)
    if max_fit_points < needed:
        raise ConfigError(
            f"max_fit_points={max_fit_points} is below the {needed} events that HDBSCAN needs with min_cluster_size={min_cluster_size} "
            f"and min_samples={min_samples}, so every event would be noise; raise --max-fit-points"
        )
    if usable < needed:
        raise DataError(
            f"HDBSCAN needs at least {needed} events with min_cluster_size={min_cluster_size} and min_samples={min_samples} (got n={usable}); lower them or add events"
        )
    if store.dim > KDTREE_MAX_DIM:
        try:
            import pynndescent  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("pynndescent", f"HDBSCAN on {store.dim}-dimensional embeddings") from exc

    # fit on a sample
    start = time.perf_counter()
    rows = sample_rows(store.num_events, max_fit_points, seed=seed, exclude=exclude_rows)
    vectors, labels = store.load(rows=rows)
    bad = nonfinite_rows(vectors)
    if len(bad):
        raise DataError(f"{len(bad)} embeddings contain NaN or infinity, event ids {describe_event_ids(labels['event_id'].to_numpy()[bad])}")
    model = fast_hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples)
    fitted = model.fit_predict(vectors).astype(np.int64)

    # the rest by nearest fitted neighbour
    cluster = np.full(store.num_events, -1, np.int64)
    cluster[rows] = fitted
    if len(rows) < usable:
        cluster = _label_by_neighbour(
            store, vectors, fitted, cluster, min_samples=min_samples, fitted_rows=rows, exclude_rows=exclude_rows, batch_size=batch_size
        )
    seconds = time.perf_counter() - start

    skip = np.zeros(store.num_events, bool)
    if exclude_rows is not None:
        skip[exclude_rows] = True
    num_clusters = int(fitted.max() + 1) if len(fitted) else 0
    noise_fraction = float((cluster[~skip] < 0).mean())
    if num_clusters == 0:
        log.warning(
            "HDBSCAN found no cluster in %d events (min_cluster_size=%d, min_samples=%d): every event is noise",
            len(rows), min_cluster_size, min_samples,
        )
    log.info("HDBSCAN: %d clusters, %.1f%% noise, %d of %d events fitted, %.1f s", num_clusters, 100 * noise_fraction, len(rows), usable, seconds)
    return DensityResult(cluster, num_clusters, noise_fraction, num_clusters == 0, len(rows), seconds)


def _label_by_neighbour(
    store: EmbeddingStore,
    fitted_vectors: np.ndarray,
    fitted_labels: np.ndarray,
    cluster: np.ndarray,
    *,
    min_samples: int,
    fitted_rows: np.ndarray,
    exclude_rows: np.ndarray | None,
    batch_size: int,
) -> np.ndarray:
    index = build_search_index(fitted_vectors, exact_max_points=EXACT_SEARCH_MAX_POINTS)
    log.info("HDBSCAN: labelling the other events by their nearest fitted event (search %s)", index.description)
    # Squared core distance of every fitted event: to its min_samples-th nearest other fitted
    # event, so min_samples + 1 neighbours because the search finds the event itself first.
    # The largest core distance among a cluster's events is the cluster's reach.
    neighbours = min(min_samples + 1, len(fitted_vectors))
    core_squared = search_batched(index, fitted_vectors, neighbours, batch_size=batch_size)[0][:, -1]
    clustered = fitted_labels >= 0
    reach_squared = np.full(int(fitted_labels.max()) + 1 if clustered.any() else 0, -np.inf, np.float32)
    np.maximum.at(reach_squared, fitted_labels[clustered], core_squared[clustered])
    outside = 0

    skip = np.zeros(store.num_events, bool)
    skip[fitted_rows] = True
    if exclude_rows is not None:
        skip[exclude_rows] = True
    offset = 0
    for vectors, _ in store.iter_shards():
        for start in range(0, len(vectors), batch_size):
            rows = np.arange(offset + start, offset + min(start + batch_size, len(vectors)))
            todo = rows[~skip[rows]]
            if len(todo):
                squared, neighbour = search_batched(index, vectors[todo - offset], 1, batch_size=batch_size)
                label = fitted_labels[neighbour[:, 0]]
                within = label >= 0
                within[within] = squared[within, 0] <= reach_squared[label[within]]
                cluster[todo] = np.where(within, label, -1)
                outside += int((~within & (label >= 0)).sum())
        offset += len(vectors)
    log.info("HDBSCAN: %d events lay beyond the reach of their nearest fitted event's cluster and are noise", outside)
    return cluster
