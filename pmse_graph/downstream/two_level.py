"""Two-level (hierarchical) k-means for many clusters, and the nearest-centroid search it allows.

A coarse k-means splits the events into about sqrt(k) groups. Inside each group, an independent
k-means trains the group's share of the k centroids, shared in proportion to the number of
distinct events in each group. This is the scheme of ``faiss.contrib.clustering.two_level_clustering``. It is written out here
because that function (faiss 1.15.1) fails when a small group is allotted zero centroids and
fixes the second level at 25 iterations.

The coarse centroids and the group of every fine centroid form a :class:`CentroidTree`. The
nearest centroid of an event is then searched only among the fine centroids of its ``probe``
nearest groups. That takes one matrix product of a group's events with the group's few hundred
centroids, in place of an index scan over all k centroids. With ``probe=1`` an event gets the centroid the
training would give it; a larger ``probe`` also finds nearer centroids across group borders.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np
import scipy.sparse
from tqdm import tqdm

from pmse_graph.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Second-level groups with less work per iteration (events x centroids x dim) run on one OpenMP
# thread, because for such small calls the threads' synchronisation costs more than they share,
# most of all on a busy machine. NOTE: the threshold is a round estimate, not a measured optimum.
SINGLE_THREAD_MAX_WORK = 50_000_000
# events searched per coarse search in the two-level search
SEARCH_BATCH = 262_144
# largest score matrix (events x centroids of one group) of the two-level search: 64 MiB of float32
MAX_SCORES = 16_777_216


@dataclass
class CentroidTree:
    """The coarse level of a two-level k-means.

    Attributes:
        coarse: ``(G, D)`` float32 group centroids; every group owns at least one fine centroid.
        group: ``(k,)`` int64 group of every fine centroid, non-decreasing (the fine centroids
            are stored group by group).
    """

    coarse: np.ndarray
    group: np.ndarray

    def __post_init__(self) -> None:
        group = np.asarray(self.group)
        if group.ndim != 1 or len(group) == 0 or not np.issubdtype(group.dtype, np.integer):
            raise DataError(f"Invalid centroid tree: the centroid groups must be a non-empty 1-D integer array (got shape {group.shape}, dtype {group.dtype})")
        if group.min() < 0 or group.max() >= len(self.coarse):
            raise DataError(f"Invalid centroid tree: centroid groups must lie in [0, {len(self.coarse)}) (found {int(group.min())}..{int(group.max())})")
        if (np.diff(group) < 0).any():
            raise DataError(f"Invalid centroid tree: the centroid groups must be sorted (first decrease at centroid {int(np.argmax(np.diff(group) < 0)) + 1})")
        counts = np.bincount(group, minlength=len(self.coarse))
        if (counts == 0).any():
            raise DataError(f"Invalid centroid tree: every one of the {len(self.coarse)} groups needs a centroid ({int((counts == 0).sum())} of them have none)")
        self.group = group.astype(np.int64, copy=False)

    @property
    def bounds(self) -> np.ndarray:
        """``(G + 1,)`` offsets: the fine centroids of group g are rows ``bounds[g]:bounds[g + 1]``."""
        return np.searchsorted(self.group, np.arange(len(self.coarse) + 1))


def train_faiss_kmeans(
    vectors: np.ndarray, k: int, *, niter: int, seed: int, max_points_per_centroid: int, gpu: bool, nredo: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run exact ``faiss.Kmeans`` and assign ``vectors`` to the trained centroids.

    Returns:
        ``(centroids, squared_distance, label)``: ``(k, D)`` float32 centroids and, for every
        row of ``vectors``, its squared distance to and index of the nearest centroid.
    """
    # min_points_per_centroid=1 silences faiss's per-call warning; fit_kmeans logs one line instead
    kmeans = faiss.Kmeans(
        vectors.shape[1], k, niter=niter, nredo=nredo, seed=seed, gpu=gpu,
        min_points_per_centroid=1, max_points_per_centroid=max_points_per_centroid,
    )
    kmeans.train(vectors)
    # faiss's obj list is per iteration and, with nredo > 1, spans several runs, so assign again
    distance, label = kmeans.index.search(vectors, 1)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32), distance[:, 0], label[:, 0]


@contextlib.contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    """Run the enclosed faiss calls on ``count`` OpenMP threads."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def row_hashes(vectors: np.ndarray, *, block_rows: int = 65_536) -> np.ndarray:
    """Return a 64-bit hash of every row's float32 bytes, ``block_rows`` rows at a time.

    Equal rows get equal hashes; two different rows collide with a chance of about 2^-64.
    """
    multipliers = np.random.default_rng(12345).integers(1, 2**63, size=vectors.shape[1], dtype=np.uint64) | np.uint64(1)
    hashes = np.empty(len(vectors), np.uint64)
    for start in range(0, len(vectors), block_rows):
        words = np.ascontiguousarray(vectors[start : start + block_rows], dtype=np.float32).view(np.uint32).astype(np.uint64)
        hashes[start : start + len(words)] = (words * multipliers).sum(axis=1)
    return hashes


def count_distinct_rows(vectors: np.ndarray, *, block_rows: int = 65_536) -> int:
    """Count distinct rows through :func:`row_hashes` (a collision, chance ~n^2/2^64, lowers the count)."""
    return len(np.unique(row_hashes(vectors, block_rows=block_rows)))


def allot_centroids(group_sizes: np.ndarray, k: int) -> np.ndarray:
    """Share ``k`` centroids among groups in proportion to their sizes, at least 1 and at most the size of each non-empty group.

    Raises:
        DataError: when the sizes add up to fewer than ``k``.
    """
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
) -> tuple[np.ndarray, CentroidTree, float]:
    """Train ``k`` centroids by a coarse k-means into groups and a k-means inside each group.

    Args:
        vectors: ``(N, D)`` C-contiguous float32 training events.
        k: Number of fine centroids.
        niter: Lloyd iterations at each level.
        seed: Seed of the coarse k-means; group g uses ``seed + g``.
        max_points_per_centroid: faiss's training sample cap per centroid.
        gpu: Train on GPUs.
        num_groups: Coarse groups (default ``round(sqrt(k))``).

    Returns:
        ``(centroids, tree, objective)``: ``(k, D)`` float32 centroids stored group by group,
        their :class:`CentroidTree`, and the mean squared distance of the training events to
        the nearest centroid of their group.
    """
    n, dim = vectors.shape
    groups = min(num_groups or max(1, int(round(np.sqrt(k)))), k)
    coarse, _, group_of = train_faiss_kmeans(vectors, groups, niter=niter, seed=seed, max_points_per_centroid=max_points_per_centroid, gpu=gpu)

    sizes = np.bincount(group_of, minlength=groups)
    order = np.argsort(group_of, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    # Centroids are shared by distinct vectors, so a group of many identical events gets no
    # centroids that can only stay empty. Identical events share a group, so the distinct
    # counts add up to the distinct vectors of all events, which the caller has checked.
    hashes = row_hashes(vectors)[order]
    distinct = np.array([len(np.unique(hashes[bounds[g] : bounds[g + 1]])) for g in range(groups)], np.int64)
    allotted = allot_centroids(distinct, k)
    centroids = np.empty((k, dim), dtype=np.float32)
    squared_sum, start = 0.0, 0
    filled = np.flatnonzero(sizes)
    for group in tqdm(filled, desc="two-level k-means", unit="group", disable=groups < 64):
        members = vectors[order[bounds[group] : bounds[group + 1]]]
        count = int(allotted[group])
        threads = 1 if len(members) * count * dim < SINGLE_THREAD_MAX_WORK and not gpu else faiss.omp_get_max_threads()
        with faiss_threads(threads):
            sub, distance, _ = train_faiss_kmeans(
                members, count, niter=niter, seed=seed + int(group), max_points_per_centroid=max_points_per_centroid, gpu=gpu
            )
        centroids[start : start + count] = sub
        squared_sum += float(distance.sum(dtype=np.float64))
        start += count

    # groups left empty by the coarse assignment own no centroid and are dropped from the tree
    tree = CentroidTree(np.ascontiguousarray(coarse[filled]), np.repeat(np.arange(len(filled)), allotted[filled]))
    return centroids, tree, squared_sum / n


def search_two_level(vectors: np.ndarray, centroids: np.ndarray, tree: CentroidTree, *, probe: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Find each event's nearest fine centroid among those of its ``probe`` nearest groups, on the CPU.

    Shapes:
        vectors: (N, D); centroids: (k, D) -> squared distance (N,) float32, centroid index (N,) int64.

    Raises:
        ConfigError: ``probe`` below 1.
        DataError: ``centroids`` and the tree disagree on k or on the dimension, the events have
            another dimension, or an event contains NaN or infinity.
    """
    if probe < 1:
        raise ConfigError(f"Expected probe >= 1 groups (got {probe})")
    dim = tree.coarse.shape[1]
    if centroids.shape != (len(tree.group), dim):
        raise DataError(
            f"The centroid tree describes {len(tree.group)} centroids of dimension {dim}, but centroids of shape "
            f"{centroids.shape} were given; pass the tree trained with these centroids"
        )
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise DataError(f"Expected events of shape (N, {dim}) to match the centroids (got {vectors.shape})")
    probe = min(probe, len(tree.coarse))
    coarse_index = faiss.IndexFlatL2(tree.coarse.shape[1])
    coarse_index.add(tree.coarse)
    # centroids relative to their group's coarse centroid: the distance expansion below then
    # works with small numbers, which keeps float32 exact enough far from the origin
    centred = np.ascontiguousarray(centroids - tree.coarse[tree.group], dtype=np.float32)
    centred_norms = np.einsum("ij,ij->i", centred, centred)

    best_distance = np.empty(len(vectors), np.float32)
    best_label = np.empty(len(vectors), np.int64)
    for start in range(0, len(vectors), SEARCH_BATCH):
        batch = np.ascontiguousarray(vectors[start : start + SEARCH_BATCH], dtype=np.float32)
        finite = np.isfinite(batch).all(axis=1)
        if not finite.all():
            raise DataError(f"{int((~finite).sum())} events contain NaN or infinity, the first at row {start + int(np.argmin(finite))}; remove or fix those events")
        _, nearest_groups = coarse_index.search(batch, probe)  # (B, probe)
        distance = np.full(len(batch), np.inf, np.float32)
        label = np.full(len(batch), -1, np.int64)
        for rank in range(probe):
            _search_groups(batch, nearest_groups[:, rank], centred, centred_norms, tree, distance, label)
        best_distance[start : start + len(batch)] = np.maximum(distance, 0.0)
        best_label[start : start + len(batch)] = label
    return best_distance, best_label


def _search_groups(
    batch: np.ndarray,
    group_of: np.ndarray,
    centred: np.ndarray,
    centred_norms: np.ndarray,
    tree: CentroidTree,
    distance: np.ndarray,
    label: np.ndarray,
) -> None:
    """Search each event of ``batch`` among the centroids of group ``group_of``; keep improvements in place."""
    bounds = tree.bounds
    # sorted by group, so that each group's events are one contiguous block
    order = np.argsort(group_of, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(group_of, minlength=len(tree.coarse)))])
    members = batch[order]
    found_distance = np.empty(len(batch), np.float32)
    found_label = np.empty(len(batch), np.int64)
    for group in np.flatnonzero(np.diff(starts)):
        low, high = bounds[group], bounds[group + 1]
        # blocks of events, so that one score matrix stays below MAX_SCORES entries
        block_rows = max(1, MAX_SCORES // (high - low))
        for first in range(starts[group], starts[group + 1], block_rows):
            last = min(first + block_rows, starts[group + 1])
            relative = members[first:last] - tree.coarse[group]
            # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, both relative to the group centroid
            scores = relative @ centred[low:high].T  # (events of the block, centroids of the group)
            scores *= -2.0
            scores += centred_norms[low:high]
            nearest = scores.argmin(axis=1)
            found_distance[first:last] = np.take_along_axis(scores, nearest[:, None], axis=1)[:, 0] + np.einsum("ij,ij->i", relative, relative)
            found_label[first:last] = low + nearest

    better = found_distance < distance[order]
    distance[order[better]] = found_distance[better]
    label[order[better]] = found_label[better]


def refine_two_level(vectors: np.ndarray, centroids: np.ndarray, tree: CentroidTree, *, iterations: int, probe: int) -> tuple[np.ndarray, float]:
    """Run Lloyd iterations with :func:`search_two_level` as the assignment step; empty clusters keep their centroid.

    The groups stay fixed: a centroid moves but keeps its group, which stays a good
    approximation while the centroids move by much less than the group spacing.

    Returns:
        ``(centroids, objective)``: the refined ``(k, D)`` centroids and the mean squared
        distance of the assignment of the last iteration.
    """
    k = len(centroids)
    objective = float("nan")
    for _ in range(iterations):
        distance, cluster = search_two_level(vectors, centroids, tree, probe=probe)
        objective = float(distance.mean(dtype=np.float64))
        membership = scipy.sparse.csr_matrix((np.ones(len(vectors), np.float32), (cluster, np.arange(len(vectors)))), shape=(k, len(vectors)))
        sums = np.asarray(membership @ vectors)
        counts = np.bincount(cluster, minlength=k)
        filled = counts > 0
        centroids = centroids.copy()
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, objective
