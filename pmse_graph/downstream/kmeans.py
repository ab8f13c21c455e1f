"""k-means clustering of event embeddings with faiss: flat, two-level, and streamed assignment.

* ``flat``: exact ``faiss.Kmeans`` (Lloyd iterations over all centroids), practical up to a
  few thousand centroids.
* ``two_level``: a coarse k-means into about sqrt(k) groups, then an independent k-means inside
  each group with centroids allotted by group size, optionally refined by Lloyd iterations whose
  assignment step searches an IVF index over the centroids. This is the scheme of
  ``faiss.contrib.clustering.two_level_clustering``. It is written out here because that
  function (faiss 1.15.1) fails when a small group is allotted zero centroids, and it fixes the
  second level at 25 iterations.

Training reads at most ``max_points_per_centroid * k`` events (a random sample), and
:func:`assign_clusters` then labels every event shard by shard in batches, so memory stays
bounded by the training sample plus one batch. GPUs are used when ``faiss.get_num_gpus() > 0``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import faiss
import numpy as np
import scipy.sparse
from tqdm import tqdm

from pmse_graph.downstream.embeddings import EmbeddingStore, describe_event_ids, nonfinite_rows
from pmse_graph.errors import ConfigError, DataError

log = logging.getLogger(__name__)

KMeansMethod = Literal["auto", "flat", "two_level"]
NonfinitePolicy = Literal["raise", "drop"]
# "auto" uses flat k-means up to this k and two-level above it
FLAT_MAX_K = 2048
# assignment searches all centroids up to this k and an IVF index over them above it
EXACT_ASSIGN_MAX_K = 4096
# below this many training points per centroid faiss prints a warning (faiss ClusteringParameters)
FAISS_MIN_POINTS_PER_CENTROID = 39
# Second-level groups with less work per iteration (events x centroids x dim) run on one OpenMP
# thread, because for such small calls the threads' synchronisation costs more than they share,
# most of all on a busy machine. NOTE: the threshold is a round estimate, not a measured optimum.
SINGLE_THREAD_MAX_WORK = 50_000_000


@dataclass
class KMeansResult:
    """Trained centroids and how they were obtained.

    Attributes:
        centroids: ``(k, dim)`` float32 centroids.
        method: ``"flat"`` or ``"two_level"``.
        train_points: Number of events the centroids were trained on.
        train_objective: Mean squared distance of the training events to their centroid.
        seconds: Wall-clock training time.
    """

    centroids: np.ndarray
    method: str
    train_points: int
    train_objective: float
    seconds: float


@dataclass
class Assignment:
    """Cluster of every event.

    Attributes:
        cluster: ``(N,)`` int64 cluster index, -1 for events skipped as non-finite.
        squared_distance: ``(N,)`` float32 squared distance to the centroid, NaN when skipped.
        objective: Mean squared distance over the assigned events.
        search: ``"exact"`` or the IVF parameters of an approximate assignment.
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


def count_distinct_rows(vectors: np.ndarray) -> int:
    """Count distinct rows through a 64-bit hash of their bytes (a collision, chance ~n^2/2^64, lowers the count)."""
    words = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32).astype(np.uint64)
    multipliers = np.random.default_rng(12345).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    hashes = (words * multipliers).sum(axis=1)
    return len(np.unique(hashes))


def check_cluster_count(k: int, vectors: np.ndarray, *, total_events: int) -> None:
    """Raise a clear error when ``k`` exceeds the events or the distinct vectors in the training sample."""
    if k < 1:
        raise ConfigError(f"Expected k >= 1 clusters (got {k})")
    if k > total_events:
        raise DataError(f"Cannot make k={k} clusters from {total_events} events: k must not exceed the number of events")
    distinct = count_distinct_rows(vectors)
    if k > distinct:
        raise DataError(
            f"Cannot make k={k} clusters: the {len(vectors)} training events contain only {distinct} distinct vectors; lower k to at most {distinct}"
        )


def _faiss_kmeans(
    vectors: np.ndarray, k: int, *, niter: int, seed: int, max_points_per_centroid: int, gpu: bool, nredo: int = 1
) -> tuple[np.ndarray, float]:
    # min_points_per_centroid=1 silences faiss's per-call warning; fit_kmeans logs one line instead
    kmeans = faiss.Kmeans(
        vectors.shape[1], k, niter=niter, nredo=nredo, seed=seed, gpu=gpu,
        min_points_per_centroid=1, max_points_per_centroid=max_points_per_centroid,
    )
    kmeans.train(vectors)
    # faiss's obj list is per iteration and, with nredo > 1, spans several runs, so measure the final centroids
    distance, _ = _search(kmeans.index, vectors, batch_size=262_144)
    objective = float(distance.mean())
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32), objective


@contextlib.contextmanager
def _faiss_threads(count: int) -> Iterator[None]:
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def allot_centroids(group_sizes: np.ndarray, k: int) -> np.ndarray:
    """Share ``k`` centroids among groups in proportion to their sizes, at least 1 and at most the size of each non-empty group."""
    sizes = group_sizes.astype(np.int64)
    quota = sizes * k / sizes.sum()
    allotted = np.where(sizes > 0, np.clip(np.floor(quota), 1, sizes), 0).astype(np.int64)

    # largest-remainder correction, a step per group at most
    while (deficit := k - int(allotted.sum())) != 0:
        if deficit > 0:
            priority = np.where(allotted < sizes, quota - allotted, -np.inf)
        else:
            priority = np.where(allotted > 1, allotted - quota, -np.inf)
        chosen = np.argsort(-priority, kind="stable")[: abs(deficit)]
        chosen = chosen[np.isfinite(priority[chosen])]
        if len(chosen) == 0:
            raise DataError(f"Cannot allot {k} centroids to groups of sizes summing to {sizes.sum()}")
        allotted[chosen] += 1 if deficit > 0 else -1
    return allotted


def fit_two_level(
    vectors: np.ndarray, *, k: int, niter: int, seed: int, max_points_per_centroid: int, gpu: bool, num_groups: int | None = None
) -> tuple[np.ndarray, float]:
    """Train ``k`` centroids by a coarse k-means into groups and a k-means inside each group.

    Returns:
        ``(centroids, objective)``: ``(k, dim)`` float32 centroids and the mean squared distance
        of the training points to their group's nearest centroid.
    """
    n, dim = vectors.shape
    groups = num_groups or max(1, int(round(np.sqrt(k))))
    groups = min(groups, k)
    coarse, _ = _faiss_kmeans(vectors, groups, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid, gpu=gpu)
    _, group_of = _search(_flat_index(coarse, gpu=gpu), vectors, batch_size=262_144)

    sizes = np.bincount(group_of, minlength=groups)
    allotted = allot_centroids(sizes, k)
    order = np.argsort(group_of, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    centroids = np.empty((k, dim), dtype=np.float32)
    weighted_objective, start = 0.0, 0
    for group in tqdm(np.flatnonzero(sizes), desc="two-level k-means", unit="group", disable=groups < 64):
        members = vectors[order[bounds[group] : bounds[group + 1]]]
        count = int(allotted[group])
        threads = 1 if len(members) * count * dim < SINGLE_THREAD_MAX_WORK and not gpu else faiss.omp_get_max_threads()
        with _faiss_threads(threads):
            sub, objective = _faiss_kmeans(members, count, niter=niter, seed=seed + int(group), max_points_per_centroid=max_points_per_centroid, gpu=gpu)
        centroids[start : start + count] = sub
        weighted_objective += objective * len(members)
        start += count
    return centroids, weighted_objective / n


def refine_centroids(vectors: np.ndarray, centroids: np.ndarray, *, iterations: int, gpu: bool) -> tuple[np.ndarray, float]:
    """Run Lloyd iterations whose assignment step uses :func:`build_assignment_index`; empty clusters keep their centroid."""
    k = len(centroids)
    objective = float("nan")
    for _ in range(iterations):
        index, _ = build_assignment_index(centroids, gpu=gpu)
        distance, cluster = _search(index, vectors, batch_size=262_144, centroids=centroids)
        objective = float(distance.mean())
        membership = scipy.sparse.csr_matrix((np.ones(len(vectors), np.float32), (cluster, np.arange(len(vectors)))), shape=(k, len(vectors)))
        sums = np.asarray(membership @ vectors)
        counts = np.bincount(cluster, minlength=k)
        filled = counts > 0
        centroids = centroids.copy()
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, objective


def fit_kmeans(
    data: EmbeddingStore | np.ndarray,
    *,
    k: int,
    method: KMeansMethod = "auto",
    niter: int = 20,
    seed: int = 0,
    max_points_per_centroid: int = 256,
    refine_iterations: int = 0,
    nredo: int = 1,
    exclude_rows: np.ndarray | None = None,
    use_gpu: bool | None = None,
) -> KMeansResult:
    """Train k-means centroids on a random sample of the embeddings.

    Args:
        data: An :class:`EmbeddingStore` or an ``(N, D)`` array (converted to C-contiguous float32).
        k: Number of clusters.
        method: ``"flat"``, ``"two_level"`` or ``"auto"`` (default: flat up to k = 2048).
        niter: Lloyd iterations of each k-means (default 20).
        seed: Seed of the sampling and of faiss (default 0).
        max_points_per_centroid: Training sample size per centroid (default 256, as faiss).
        refine_iterations: Extra IVF-assigned iterations after two-level training (default 0).
        nredo: Flat k-means runs from different random starts, the best kept (default 1).
        exclude_rows: Global rows to leave out, for example from :func:`find_nonfinite`.
        use_gpu: Train on GPUs (default: when faiss finds one).

    Raises:
        DataError: when the sample has NaN rows, or k exceeds the events or distinct vectors.
    """
    if method not in get_args(KMeansMethod):
        raise ConfigError(f"Expected a k-means method in {get_args(KMeansMethod)} (got {method!r})")
    if niter < 1 or max_points_per_centroid < 1 or refine_iterations < 0 or nredo < 1:
        raise ConfigError(
            "Expected niter >= 1, max_points_per_centroid >= 1, refine_iterations >= 0, nredo >= 1 "
            f"(got {niter}, {max_points_per_centroid}, {refine_iterations}, {nredo})"
        )
    store = data if isinstance(data, EmbeddingStore) else EmbeddingStore.from_array(data)
    gpu = use_gpu_default() if use_gpu is None else use_gpu
    chosen = method
    if method == "auto":
        chosen = "flat" if k <= FLAT_MAX_K else "two_level"

    # training sample
    usable = store.num_events - (0 if exclude_rows is None else len(exclude_rows))
    if k > usable:
        raise DataError(f"Cannot make k={k} clusters from {usable} events: k must not exceed the number of events")
    rows = sample_rows(store.num_events, k * max_points_per_centroid, seed=seed, exclude=exclude_rows)
    vectors, labels = store.load(rows=rows)
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
    if chosen == "flat":
        centroids, objective = _faiss_kmeans(
            vectors, k, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid, gpu=gpu, nredo=nredo
        )
    else:
        centroids, objective = fit_two_level(vectors, k=k, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid, gpu=gpu)
        if refine_iterations:
            centroids, objective = refine_centroids(vectors, centroids, iterations=refine_iterations, gpu=gpu)
    seconds = time.perf_counter() - start
    log.info("%s k-means: %d centroids from %d events in %.1f s, training objective %.4g", chosen, k, len(vectors), seconds, objective)
    return KMeansResult(centroids, chosen, len(vectors), objective, seconds)


def _flat_index(centroids: np.ndarray, *, gpu: bool) -> Any:
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    return faiss.index_cpu_to_all_gpus(index) if gpu else index


def build_assignment_index(centroids: np.ndarray, *, gpu: bool = False, nprobe: int = 16) -> tuple[Any, str]:
    """Return a faiss index over the centroids and its description: exact up to ``EXACT_ASSIGN_MAX_K``, IVF above."""
    k, dim = centroids.shape
    if k <= EXACT_ASSIGN_MAX_K:
        return _flat_index(centroids, gpu=gpu), "exact"
    nlist = max(1, min(int(4 * np.sqrt(k)), k // FAISS_MIN_POINTS_PER_CENTROID))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
    index.cp.min_points_per_centroid = 1
    index.train(centroids)
    index.add(centroids)
    index.nprobe = min(nprobe, nlist)
    return index, f"ivf nlist={nlist} nprobe={index.nprobe}"


def _search(index: Any, vectors: np.ndarray, *, batch_size: int, centroids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return the squared distance to and the index of the nearest centroid of every row of ``vectors``.

    An IVF search returns -1 for a query whose probed lists are all empty; with ``centroids``
    given, such queries are searched again exactly.
    """
    distances = np.empty(len(vectors), np.float32)
    labels = np.empty(len(vectors), np.int64)
    for start in range(0, len(vectors), batch_size):
        batch = np.ascontiguousarray(vectors[start : start + batch_size], dtype=np.float32)
        distance, label = index.search(batch, 1)
        missing = np.flatnonzero(label[:, 0] < 0)
        if len(missing) and centroids is not None:
            exact_distance, exact_label = _flat_index(centroids, gpu=False).search(batch[missing], 1)
            distance[missing], label[missing] = exact_distance, exact_label
        distances[start : start + len(batch)] = distance[:, 0]
        labels[start : start + len(batch)] = label[:, 0]
    return distances, labels


def assign_clusters(
    data: EmbeddingStore | np.ndarray,
    centroids: np.ndarray,
    *,
    batch_size: int = 65_536,
    exclude_rows: np.ndarray | None = None,
    use_gpu: bool | None = None,
) -> Assignment:
    """Assign every event to its nearest centroid, streaming shard by shard in batches.

    Args:
        data: An :class:`EmbeddingStore` or an ``(N, D)`` array.
        centroids: ``(k, D)`` centroids.
        batch_size: Events searched at once (default 65,536).
        exclude_rows: Global rows that get cluster -1 without a search (non-finite events).
        use_gpu: Search on GPUs (default: when faiss finds one).
    """
    store = data if isinstance(data, EmbeddingStore) else EmbeddingStore.from_array(data)
    gpu = use_gpu_default() if use_gpu is None else use_gpu
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    index, search = build_assignment_index(centroids, gpu=gpu)
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
                    found_distance, found = _search(index, vectors[keep - offset], batch_size=batch_size, centroids=centroids)
                    cluster[keep] = found
                    distance[keep] = found_distance
                progress.update(len(rows))
            offset += len(vectors)
    assigned = cluster >= 0
    objective = float(distance[assigned].mean()) if assigned.any() else float("nan")
    return Assignment(cluster, distance, objective, search)


def compare_with_flat(
    data: EmbeddingStore | np.ndarray,
    *,
    k: int,
    sample_points: int = 50_000,
    niter: int = 20,
    seed: int = 0,
    exclude_rows: np.ndarray | None = None,
) -> dict[str, float | int]:
    """Compare the two-level objective with flat k-means on a random subsample.

    Both methods cluster the same ``m`` sampled events into ``k * m / N`` centroids (at least 2,
    at most ``FLAT_MAX_K`` and ``m``), so each centroid gets as many events as in the full run.

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
