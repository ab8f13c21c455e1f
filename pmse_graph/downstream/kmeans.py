"""k-means clustering of event embeddings with faiss: flat, two-level, and streamed assignment.

* ``flat``: exact ``faiss.Kmeans`` (Lloyd iterations over all centroids), practical up to a
  few thousand centroids.
* ``two_level``: a coarse k-means into about sqrt(k) groups, then an independent k-means inside
  each group (:mod:`pmse_graph.downstream.two_level`), optionally refined by Lloyd iterations.

Training reads at most ``max_points_per_centroid * k`` events (a random sample), and
:func:`assign_clusters` then labels every event shard by shard in batches, so memory stays
bounded by the training sample plus one batch. Two-level centroids are searched through their
groups (:func:`~pmse_graph.downstream.two_level.search_two_level`), flat ones exactly or, above
``EXACT_ASSIGN_MAX_K`` centroids, through an IVF index. GPUs are used when
``faiss.get_num_gpus() > 0``; there every assignment is an exact search.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal, get_args

import faiss
import numpy as np
from tqdm import tqdm

from pmse_graph.downstream.embeddings import (
    EmbeddingStore,
    describe_event_ids,
    nonfinite_rows,
)
from pmse_graph.downstream.neighbours import build_search_index, search_batched
from pmse_graph.downstream.two_level import (
    count_distinct_rows,
    CentroidTree,
    fit_two_level,
    refine_two_level,
    search_two_level,
    train_faiss_kmeans,
)
from pmse_graph.errors import ConfigError, DataError

log = logging.getLogger(__name__)

KMeansMethod = Literal["auto", "flat", "two_level"]
NonfinitePolicy = Literal["raise", "drop"]
# "auto" uses flat k-means up to this k and two-level above it
FLAT_MAX_K = 2048
# flat centroids are searched exactly up to this k and through an IVF index above it
EXACT_ASSIGN_MAX_K = 4096
# below this many training points per centroid faiss prints a warning (faiss ClusteringParameters)
FAISS_MIN_POINTS_PER_CENTROID = 39
# coarse groups searched per event when assigning to two-level centroids
DEFAULT_PROBE = 2
# Default Lloyd iterations. Two-level k-means runs them at each level. Clustering 1M and 3M
# Gaussian-mixture events of dimension 128 into 100,000 clusters, 10 iterations came within 0.2%
# of the objective of 20 in 60-80% of the time (benchmarks/bench_clustering.py, RESULTS.md).
FLAT_NITER = 20
TWO_LEVEL_NITER = 10


@dataclass
class KMeansResult:
    """Trained centroids and how they were obtained.

    Attributes:
        centroids: ``(k, dim)`` float32 centroids.
        method: ``"flat"`` or ``"two_level"``.
        train_points: Number of events the centroids were trained on.
        train_objective: Mean squared distance of the training events to their centroid.
        seconds: Wall-clock training time.
        tree: The coarse groups of two-level centroids, None for flat ones.
        niter: Lloyd iterations run (at each level for two-level).
    """

    centroids: np.ndarray
    method: str
    train_points: int
    train_objective: float
    seconds: float
    tree: CentroidTree | None = None
    niter: int = FLAT_NITER


@dataclass
class Assignment:
    """Cluster of every event.

    Attributes:
        cluster: ``(N,)`` int64 cluster index, -1 for events skipped as non-finite.
        squared_distance: ``(N,)`` float32 squared distance to the centroid, NaN when skipped.
        objective: Mean squared distance over the assigned events.
        search: ``"exact"``, or how an approximate assignment searched (IVF or two-level parameters).
    """

    cluster: np.ndarray
    squared_distance: np.ndarray
    objective: float
    search: str


def use_gpu_default() -> bool:
    """Return True when faiss finds at least one GPU."""
    # NOTE: the GPU branches (faiss.Kmeans(gpu=True), index_cpu_to_all_gpus) have not been run, since
    # the faiss-cpu build that the package installs always reports zero GPUs
    return faiss.get_num_gpus() > 0


def find_nonfinite(store: EmbeddingStore, *, policy: NonfinitePolicy = "raise") -> np.ndarray:
    """Return the global rows of events whose embedding contains NaN or infinity.

    Args:
        store: The embeddings to scan shard by shard.
        policy: ``"raise"`` (default) raises on any such event; ``"drop"`` returns their rows
            for the caller to skip and logs their count and first event ids.

    Raises:
        DataError: with ``policy="raise"``, naming the event ids.
    """
    if policy not in get_args(NonfinitePolicy):
        raise ConfigError(f"Expected a non-finite policy in {get_args(NonfinitePolicy)} (got {policy!r})")
    rows, ids, offset = [], [], 0
    for vectors, labels in store.iter_shards():
        # in blocks, so the boolean mask stays small for a single large .npy shard
        blocks = [start + nonfinite_rows(vectors[start : start + 65_536]) for start in range(0, len(vectors), 65_536)]
        bad = np.concatenate(blocks) if blocks else np.empty(0, np.int64)
        rows.append(bad + offset)
        ids.append(labels["event_id"].to_numpy()[bad])
        offset += len(vectors)
    rows_all = np.concatenate(rows) if rows else np.empty(0, np.int64)
    if len(rows_all) == 0:
        return rows_all
    message = f"{len(rows_all)} of {store.num_events} embeddings contain NaN or infinity, event ids {describe_event_ids(np.concatenate(ids))}"
    if policy == "raise":
        raise DataError(f"{message}; fix the embedding step, or skip them with --nonfinite drop (policy='drop' in Python)")
    log.warning("%s; these events are skipped and get cluster -1", message)
    return rows_all


def sample_rows(num_events: int, num_points: int, *, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Return up to ``num_points`` sorted random rows of ``range(num_events)`` outside ``exclude``."""
    candidates = np.arange(num_events) if exclude is None or len(exclude) == 0 else np.setdiff1d(np.arange(num_events), exclude)
    if len(candidates) <= num_points:
        return candidates
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=num_points, replace=False))


def check_cluster_count(k: int, vectors: np.ndarray, *, total_events: int) -> None:
    """Raise a clear error when ``k`` exceeds the events or the distinct vectors in the training sample."""
    if k < 1:
        raise ConfigError(f"Expected k >= 1 clusters (got {k})")
    if k > total_events:
        raise DataError(f"Cannot make k={k} clusters from {total_events} events: k must not exceed the number of events")
    # a leading block with k distinct rows settles it without hashing every row
    block = vectors[: min(len(vectors), max(4 * k, 65_536))]
    distinct = count_distinct_rows(block)
    if distinct < k and len(block) < len(vectors):
        distinct = count_distinct_rows(vectors)
    if k > distinct:
        raise DataError(
            f"Cannot make k={k} clusters: the {len(vectors)} training events contain only {distinct} distinct vectors; lower k to at most {distinct}"
        )


def fit_kmeans(
    data: EmbeddingStore | np.ndarray,
    *,
    k: int,
    method: KMeansMethod = "auto",
    niter: int | None = None,
    seed: int = 0,
    max_points_per_centroid: int = 256,
    refine_iterations: int = 0,
    probe: int = DEFAULT_PROBE,
    nredo: int = 1,
    exclude_rows: np.ndarray | None = None,
    use_gpu: bool | None = None,
) -> KMeansResult:
    """Train k-means centroids on a random sample of the embeddings.

    Args:
        data: An :class:`EmbeddingStore` or an ``(N, D)`` array (converted to C-contiguous float32).
        k: Number of clusters.
        method: ``"flat"``, ``"two_level"`` or ``"auto"`` (default: flat up to k = 2048).
        niter: Lloyd iterations of each k-means (default 20 for flat, 10 for two-level).
        seed: Seed of the sampling and of faiss (default 0).
        max_points_per_centroid: Training sample size per centroid (default 256, as faiss).
        refine_iterations: Lloyd iterations after two-level training, each assigning the
            events through their ``probe`` nearest groups (default 0).
        probe: Coarse groups searched per event by the refinement (default 2).
        nredo: Flat k-means runs from different random starts, the best kept (default 1).
        exclude_rows: Global rows to leave out, for example from :func:`find_nonfinite`.
        use_gpu: Train on GPUs (default: when faiss finds one).

    Raises:
        DataError: when the sample has NaN rows, or k exceeds the events or distinct vectors.
    """
    if method not in get_args(KMeansMethod):
        raise ConfigError(f"Expected a k-means method in {get_args(KMeansMethod)} (got {method!r})")
    chosen = method
    if method == "auto":
        chosen = "flat" if k <= FLAT_MAX_K else "two_level"
    if niter is None:
        niter = FLAT_NITER if chosen == "flat" else TWO_LEVEL_NITER
    limits = {"niter": (niter, 1), "max_points_per_centroid": (max_points_per_centroid, 1), "refine_iterations": (refine_iterations, 0), "probe": (probe, 1), "nredo": (nredo, 1)}
    for name, (value, lowest) in limits.items():
        if value < lowest:
            raise ConfigError(f"Expected {name} >= {lowest} (got {value})")
    store = data if isinstance(data, EmbeddingStore) else EmbeddingStore.from_array(data)
    gpu = use_gpu_default() if use_gpu is None else use_gpu

    # training sample
    usable = store.num_events - (0 if exclude_rows is None else len(exclude_rows))
    if k > usable:
        raise DataError(f"Cannot make k={k} clusters from {usable} events: k must not exceed the number of events")
    rows = sample_rows(store.num_events, k * max_points_per_centroid, seed=seed, exclude=exclude_rows)
    vectors, labels = store.load(rows=rows, copy=False)  # read-only use below
    bad = nonfinite_rows(vectors)
    if len(bad):
        raise DataError(f"{len(bad)} training embeddings contain NaN or infinity, event ids {describe_event_ids(labels['event_id'].to_numpy()[bad])}")
    check_cluster_count(k, vectors, total_events=usable)
    per_centroid = len(vectors) / k
    if per_centroid < FAISS_MIN_POINTS_PER_CENTROID:
        log.warning(
            "k-means trains %d centroids on %d events (%.1f per centroid, faiss advises at least %d); small clusters will be noisy",
            k, len(vectors), per_centroid, FAISS_MIN_POINTS_PER_CENTROID,
        )

    start = time.perf_counter()
    tree = None
    if chosen == "flat":
        centroids, distance, _ = train_faiss_kmeans(
            vectors, k, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid, gpu=gpu, nredo=nredo
        )
        objective = float(distance.mean(dtype=np.float64))
    else:
        centroids, tree, objective = fit_two_level(vectors, k=k, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid, gpu=gpu)
        if refine_iterations:
            centroids, objective = refine_two_level(vectors, centroids, tree, iterations=refine_iterations, probe=probe)
    seconds = time.perf_counter() - start
    log.info("%s k-means: %d centroids from %d events, %d iterations, in %.1f s, training objective %.4g", chosen, k, len(vectors), niter, seconds, objective)
    return KMeansResult(centroids, chosen, len(vectors), objective, seconds, tree, niter)


def assign_clusters(
    data: EmbeddingStore | np.ndarray,
    centroids: np.ndarray,
    *,
    tree: CentroidTree | None = None,
    probe: int = DEFAULT_PROBE,
    batch_size: int = 262_144,
    exclude_rows: np.ndarray | None = None,
    use_gpu: bool | None = None,
) -> Assignment:
    """Assign every event to its nearest centroid, streaming shard by shard in batches.

    Args:
        data: An :class:`EmbeddingStore` or an ``(N, D)`` array.
        centroids: ``(k, D)`` centroids.
        tree: The groups of two-level centroids (:attr:`KMeansResult.tree`); each event is then
            searched among the centroids of its ``probe`` nearest groups. Without it the search
            is exact up to ``EXACT_ASSIGN_MAX_K`` centroids and goes through an IVF index above.
        probe: Coarse groups searched per event with ``tree`` (default 2).
        batch_size: Events searched at once (default 262,144).
        exclude_rows: Global rows that get cluster -1 without a search (non-finite events).
        use_gpu: Search exactly on GPUs, ignoring ``tree`` (default: when faiss finds one).
    """
    store = data if isinstance(data, EmbeddingStore) else EmbeddingStore.from_array(data)
    gpu = use_gpu_default() if use_gpu is None else use_gpu
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if tree is not None and not gpu:
        search = f"two-level probe={min(probe, len(tree.coarse))} of {len(tree.coarse)} groups"

        def nearest(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return search_two_level(vectors, centroids, tree, probe=probe)
    else:
        index = build_search_index(centroids, exact_max_points=len(centroids) if gpu else EXACT_ASSIGN_MAX_K, use_gpu=gpu)
        search = index.description

        def nearest(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found_distance, found = search_batched(index, vectors, 1, batch_size=batch_size)
            return found_distance[:, 0], found[:, 0]

    cluster = np.full(store.num_events, -1, np.int64)
    distance = np.full(store.num_events, np.nan, np.float32)
    skip = np.zeros(store.num_events, bool)
    if exclude_rows is not None:
        skip[exclude_rows] = True

    offset = 0
    with tqdm(total=store.num_events, desc="assigning clusters", unit="event", disable=store.num_events < 1_000_000) as progress:
        for vectors, _ in store.iter_shards():
            for start in range(0, len(vectors), batch_size):
                rows = np.arange(offset + start, offset + min(start + batch_size, len(vectors)))
                keep = rows[~skip[rows]]
                if len(keep):
                    distance[keep], cluster[keep] = nearest(np.ascontiguousarray(vectors[keep - offset], dtype=np.float32))
                progress.update(len(rows))
            offset += len(vectors)
    assigned = cluster >= 0
    objective = float(distance[assigned].mean(dtype=np.float64)) if assigned.any() else float("nan")
    return Assignment(cluster, distance, objective, search)


def compare_with_flat(
    data: EmbeddingStore | np.ndarray,
    *,
    k: int,
    sample_points: int = 50_000,
    niter: int | None = None,
    seed: int = 0,
    exclude_rows: np.ndarray | None = None,
) -> dict[str, float | int]:
    """Compare the two-level objective with flat k-means on a random subsample.

    Both methods cluster the same ``m`` sampled events into ``k * m / N`` centroids (at least 2,
    at most ``FLAT_MAX_K`` and ``m``), so each centroid gets as many events as in the full run.
    ``niter`` (default: each method's own default) applies to both. The sample run has fewer
    coarse groups than the full one, so the ratio is a check, not the full-size gap: on the
    Gaussian mixtures of ``benchmarks/bench_clustering.py`` it read 0.98-1.01 where flat
    k-means at the full k ended 1.4-4.8% lower than two-level.

    Returns:
        ``sample_points``, ``k``, ``flat_objective``, ``two_level_objective`` (mean squared
        distances, exact assignment) and ``ratio`` (two-level over flat).
    """
    store = data if isinstance(data, EmbeddingStore) else EmbeddingStore.from_array(data)
    rows = sample_rows(store.num_events, sample_points, seed=seed + 1, exclude=exclude_rows)
    vectors, _ = store.load(rows=rows)
    distinct = count_distinct_rows(vectors)
    usable = store.num_events - (0 if exclude_rows is None else len(exclude_rows))
    sample_k = int(min(max(2, round(k * len(vectors) / usable)), FLAT_MAX_K, distinct))
    if sample_k < 2:
        raise DataError(f"Cannot compare k-means methods on {len(vectors)} sampled events with {distinct} distinct vectors")

    objectives = {}
    for method in ("flat", "two_level"):
        result = fit_kmeans(vectors, k=sample_k, method=method, niter=niter, seed=seed, max_points_per_centroid=len(vectors))
        objectives[method] = assign_clusters(vectors, result.centroids).objective
    ratio = objectives["two_level"] / objectives["flat"] if objectives["flat"] > 0 else float("nan")
    return {
        "sample_points": len(vectors),
        "k": sample_k,
        "flat_objective": objectives["flat"],
        "two_level_objective": objectives["two_level"],
        "ratio": ratio,
    }
