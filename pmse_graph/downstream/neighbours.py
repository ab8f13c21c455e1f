"""Nearest-neighbour search over embeddings with faiss: exact for small references, IVF above.

Exact search costs ``R * Q * D`` multiply-adds for R reference and Q query vectors, about
3e14 for 1.5M and 1.5M vectors of dimension 128. That is about 45 minutes on 2 cores at
faiss's 200-250 GFLOP/s (an estimate). Above ``exact_max_points`` reference vectors,
:func:`build_search_index` therefore builds an inverted file (IVF) index with ``4 * sqrt(R)``
lists and probes ``nprobe`` of them per query. A query whose probed lists contain fewer than
``k`` vectors gets -1 from faiss, so :func:`search_batched` searches such queries again exactly
and every result is complete.

The kNN classifier, the anomaly score, the k-means assignment over many centroids and the
HDBSCAN labelling of unfitted events all search through this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, get_args

import faiss
import numpy as np

from pmse_graph.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Metric = Literal["l2", "inner_product"]
# exact search up to this many reference vectors (1e5 x 1e5 x 128 is about 1.3e12 multiply-adds)
EXACT_SEARCH_MAX_POINTS = 100_000
# IVF lists probed per query by default
DEFAULT_NPROBE = 16
# faiss trains an IVF quantizer on at most this many points per list (faiss ClusteringParameters)
IVF_TRAIN_POINTS_PER_LIST = 256


@dataclass
class SearchIndex:
    """A faiss index over reference vectors and how it searches.

    Attributes:
        index: The faiss index (``IndexFlat*`` or ``IndexIVFFlat``).
        reference: ``(R, D)`` float32 reference vectors, kept for exact re-searches.
        metric: ``"l2"`` (squared Euclidean distances) or ``"inner_product"`` (similarities).
        description: ``"exact"`` or the IVF parameters, for logs and result files.
    """

    index: Any
    reference: np.ndarray
    metric: Metric
    description: str

    @property
    def is_exact(self) -> bool:
        return self.description == "exact"


def _flat_index(dim: int, metric: Metric) -> Any:
    return faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)


def build_search_index(
    reference: np.ndarray,
    *,
    metric: Metric = "l2",
    exact_max_points: int = EXACT_SEARCH_MAX_POINTS,
    nprobe: int = DEFAULT_NPROBE,
    seed: int = 0,
    use_gpu: bool = False,
) -> SearchIndex:
    """Index ``reference`` for nearest-neighbour search: exact up to ``exact_max_points``, IVF above.

    Args:
        reference: ``(R, D)`` reference vectors (converted to C-contiguous float32).
        metric: ``"l2"`` (default) or ``"inner_product"``; for cosine similarity pass
            L2-normalised vectors with ``"inner_product"``.
        exact_max_points: Largest R searched exactly (default 100,000).
        nprobe: IVF lists probed per query (default 16).
        seed: Seed of the IVF quantizer's k-means (default 0).
        use_gpu: Put the index on all GPUs faiss finds (default False).

    Raises:
        ConfigError: on an unknown metric, an empty reference or ``nprobe`` below 1.
    """
    if metric not in get_args(Metric):
        raise ConfigError(f"Expected a metric in {get_args(Metric)} (got {metric!r})")
    if nprobe < 1:
        raise ConfigError(f"Expected nprobe >= 1 (got {nprobe})")
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    count, dim = reference.shape
    if count == 0:
        raise ConfigError("Cannot build a nearest-neighbour index over zero reference vectors")

    if count <= exact_max_points:
        index = _flat_index(dim, metric)
        index.add(reference)
        description = "exact"
    else:
        nlist = max(1, int(4 * np.sqrt(count)))
        index = faiss.IndexIVFFlat(_flat_index(dim, metric), dim, nlist, faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # silences faiss's warning for small references
        index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST
        index.train(reference)
        index.add(reference)
        index.nprobe = min(nprobe, nlist)
        description = f"ivf nlist={nlist} nprobe={index.nprobe}"
    if use_gpu:
        # NOTE: not run yet, since the faiss-cpu build that the package installs reports zero GPUs
        index = faiss.index_cpu_to_all_gpus(index)
    return SearchIndex(index, reference, metric, description)


def search_batched(index: SearchIndex, queries: np.ndarray, k: int, *, batch_size: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Find the ``k`` nearest reference vectors of every query, ``batch_size`` queries at a time.

    Queries for which an IVF search finds fewer than ``k`` neighbours in its probed lists are
    searched again exactly, so no -1 neighbour is returned.

    Shapes:
        queries: (Q, D) -> distances (Q, k) float32 (squared L2 or inner products), neighbours (Q, k) int64.

    Raises:
        ConfigError: ``k`` below 1 or above the number of reference vectors.
        DataError: a query contains NaN or infinity (faiss would return -1 for it).
    """
    if not 1 <= k <= len(index.reference):
        raise ConfigError(f"Expected 1 <= k <= {len(index.reference)} reference vectors (got k={k})")
    distances = np.empty((len(queries), k), np.float32)
    neighbours = np.empty((len(queries), k), np.int64)
    exact = None
    repeated = 0
    for start in range(0, len(queries), batch_size):
        batch = np.ascontiguousarray(queries[start : start + batch_size], dtype=np.float32)
        finite = np.isfinite(batch).all(axis=1)
        if not finite.all():
            raise DataError(f"{int((~finite).sum())} nearest-neighbour queries contain NaN or infinity, the first at query {start + int(np.argmin(finite))}; remove or fix those events")
        distance, neighbour = index.index.search(batch, k)
        incomplete = np.flatnonzero((neighbour < 0).any(axis=1))
        if len(incomplete):
            if exact is None:
                exact = _flat_index(index.reference.shape[1], index.metric)
                exact.add(index.reference)
            distance[incomplete], neighbour[incomplete] = exact.search(batch[incomplete], k)
            repeated += len(incomplete)
        distances[start : start + len(batch)] = distance
        neighbours[start : start + len(batch)] = neighbour
    if repeated:
        log.info("%d of %d queries found fewer than %d neighbours in the probed IVF lists and were searched exactly", repeated, len(queries), k)
    return distances, neighbours
