"""Build PyTorch Geometric batches of particle graphs from whole event chunks.

One event becomes one graph whose nodes are its particles. Edges join every
ordered pair of distinct particles in the event, or with ``graph="knn"`` each
particle receives edges from its ``k`` nearest neighbours in opening angle.
Events with more than ``max_complete_nodes`` particles (default 64) get kNN
edges even in a complete graph, because their n (n - 1) edges would dominate the
batch. Their number is logged once per built batch.
Edge features are the pair kinematics of :mod:`pmse_graph.physics.kinematics`:
log m^2, cos and sin of the opening angle, log kT and log z. When the schema
declares EMC showers, three more follow: log(1 + distance / cm) between the two
showers, the time difference (source minus target, 50 ns units) and a flag set
when both particles have a shower. These are zero unless both have a shower. Every array is
built for the whole chunk at once; nothing loops over events.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
from torch_geometric.data import Batch

from pmse_graph.data.chunk import EventChunk, counts_to_offsets
from pmse_graph.data.pairs import ordered_pairs_with_reverse
from pmse_graph.data.schema import Schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.errors import ConfigError
from pmse_graph.physics.kinematics import EPS, pair_features

GraphKind = Literal["complete", "knn"]
GRAPH_KINDS = ("complete", "knn")
MAX_COMPLETE_NODES = 64
"""Default size above which an event gets kNN edges instead of complete ones."""

logger = logging.getLogger(__name__)


def _knn_keep(source: np.ndarray, target: np.ndarray, p3: np.ndarray, k: int) -> np.ndarray:
    """Return a mask keeping, for each target, the ``k`` sources with the smallest opening angle.

    Relies on ``ordered_pairs`` grouping pairs by target, so a stable sort by
    descending cosine inside each group ranks the candidates.
    """
    norm = np.maximum(np.linalg.norm(p3, axis=1), EPS)
    direction = p3 / norm[:, None]
    cos = (direction[source] * direction[target]).sum(axis=1)
    order = np.lexsort((-cos, target))
    group_start = counts_to_offsets(np.bincount(target, minlength=len(p3)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - group_start[target[order]]
    return rank < k


def edge_features(source: np.ndarray, target: np.ndarray, chunk: EventChunk, *, with_showers: bool,
                  reverse: np.ndarray | None = None) -> np.ndarray:
    """Return the pair features of the edges ``source -> target``.

    Args:
        source: source node of each edge.
        target: target node of each edge.
        chunk: the events the nodes belong to.
        with_showers: add the three EMC shower columns.
        reverse: position of each edge's reverse edge, when every edge has one (complete
            graphs). The features are then computed once per unordered pair, which halves the work.

    Shapes:
        source, target, reverse: (num_edges,); returns (num_edges, E) float32, E = 5, or 8 with ``with_showers``.
    """
    if reverse is None:
        return _direct_edge_features(source, target, chunk, with_showers=with_showers)
    half = np.flatnonzero(source < target)
    features = _direct_edge_features(source[half], target[half], chunk, with_showers=with_showers)
    mirrored = reverse[half]
    row = np.empty(len(source), dtype=np.int64)
    row[half] = np.arange(len(half))
    row[mirrored] = row[half]
    out = np.take(features, row, axis=0)
    if with_showers:
        out[mirrored, 6] *= -1.0  # the time difference changes sign with the direction
    return out


def _direct_edge_features(source: np.ndarray, target: np.ndarray, chunk: EventChunk, *, with_showers: bool) -> np.ndarray:
    # np.take gathers rows faster than fancy indexing
    p3 = np.ascontiguousarray(chunk.p4[:, :3])
    squared = np.einsum("ij,ij->i", p3, p3)
    mass = np.sqrt(np.maximum(chunk.p4[:, 3] ** 2 - squared, 0.0))
    # |p| once per particle, gathered per pair: the same values as computing it per pair
    norm = np.sqrt(squared)
    kinematics = pair_features(np.take(p3, source, axis=0), np.take(p3, target, axis=0),
                               np.take(mass, source), np.take(mass, target),
                               norm_i=np.take(norm, source), norm_j=np.take(norm, target))
    if not with_showers:
        return kinematics.astype(np.float32, copy=False)
    out = np.empty((len(source), kinematics.shape[1] + 3), dtype=np.float32)
    out[:, : kinematics.shape[1]] = kinematics
    both = np.take(chunk.has_shower, source) & np.take(chunk.has_shower, target)
    delta = np.take(chunk.shower, source, axis=0) - np.take(chunk.shower, target, axis=0)
    distance = np.log1p(np.sqrt(np.einsum("ij,ij->i", delta[:, :3], delta[:, :3])))
    out[:, -3] = np.where(both, distance, 0.0)
    out[:, -2] = np.where(both, delta[:, 3], 0.0)
    out[:, -1] = both
    return out


def build_batch(chunk: EventChunk, standardizer: Standardizer, *, schema: Schema | None = None,
                graph: GraphKind = "complete", k: int = 16, include_p4: bool = True,
                max_complete_nodes: int | None = MAX_COMPLETE_NODES) -> Batch:
    """Turn a chunk into one PyG :class:`~torch_geometric.data.Batch`, one graph per event.

    Args:
        chunk: the events; events with zero particles become graphs with no nodes.
        standardizer: fitted standardiser for the continuous features.
        schema: the schema that the standardiser must match and that decides on the shower
            features. Without it, shower features are added if the chunk has any shower.
        graph: ``"complete"`` (default) joins every ordered pair of distinct particles;
            ``"knn"`` keeps, for each particle, edges from its ``k`` nearest particles in
            opening angle (events with at most ``k + 1`` particles stay complete).
        k: neighbours per particle for ``graph="knn"`` (default 16).
        include_p4: also store the raw four-momenta as ``p4`` (default True).
        max_complete_nodes: events with more particles get kNN edges (``k`` neighbours)
            under ``graph="complete"``; their count is logged. None turns the guard off (default 64).

    Returns:
        A batch with ``x`` (num_nodes, F) float32, ``x_cat`` (num_nodes, C) int64,
        ``edge_index`` (2, num_edges) int64 in source-to-target order, ``edge_attr``
        (num_edges, E) float32, ``cond`` (num_graphs, 4) int64, ``y`` and ``y_fs``
        (num_graphs,) int64 (-1 unknown), ``event_id`` (num_graphs,) int64, ``batch``,
        ``ptr`` and, with ``include_p4``, ``p4`` (num_nodes, 4) float32 ordered (px, py, pz, E).
    """
    if graph not in GRAPH_KINDS:
        raise ConfigError(f"Invalid graph kind '{graph}': expected one of {GRAPH_KINDS}")
    if graph == "knn" and k < 1:
        raise ConfigError(f"k must be at least 1 for graph='knn' (got {k})")
    if max_complete_nodes is not None and (max_complete_nodes < 1 or k < 1):
        raise ConfigError(f"max_complete_nodes and k must be at least 1 (got {max_complete_nodes}, {k})")
    if schema is not None:
        standardizer.check_schema(schema)
        with_showers = schema.has_shower_pairs
    else:
        with_showers = bool(chunk.has_shower.any())

    # node features: standardised continuous values, then the presence flags
    x = np.concatenate([standardizer.transform(chunk.continuous, chunk.missing), chunk.present.astype(np.float32)], axis=1)

    # edges of every event, grouped by target node
    source, target, reverse = ordered_pairs_with_reverse(chunk.offsets)
    if graph == "knn":
        keep = _knn_keep(source, target, chunk.p4[:, :3], k)
        source, target, reverse = source[keep], target[keep], None
    elif max_complete_nodes is not None and len(chunk.counts) and chunk.counts.max() > max_complete_nodes:
        large = chunk.counts > max_complete_nodes
        logger.warning("%d of %d events have more than %d particles and get kNN edges (k=%d) instead of complete ones",
                       int(large.sum()), chunk.num_events, max_complete_nodes, k)
        in_large = np.repeat(large, chunk.counts)[target]
        keep = np.ones(len(target), dtype=bool)
        keep[in_large] = _knn_keep(source[in_large], target[in_large], chunk.p4[:, :3], k)
        source, target, reverse = source[keep], target[keep], None
    edge_attr = edge_features(source, target, chunk, with_showers=with_showers, reverse=reverse)

    num_graphs = chunk.num_events
    counts = chunk.counts
    node_ptr = torch.from_numpy(chunk.offsets)
    graph_of_node = np.repeat(np.arange(num_graphs, dtype=np.int64), counts)
    edge_ptr = torch.from_numpy(counts_to_offsets(np.bincount(graph_of_node[target], minlength=num_graphs)))
    values = {
        "x": torch.from_numpy(x),
        "x_cat": torch.from_numpy(np.ascontiguousarray(chunk.categorical, dtype=np.int64)),
        "edge_index": torch.from_numpy(np.stack([source, target])),
        "edge_attr": torch.from_numpy(edge_attr),
        "cond": torch.from_numpy(chunk.cond.astype(np.int64, copy=False)),
        "y": torch.from_numpy(chunk.y.astype(np.int64, copy=False)),
        "y_fs": torch.from_numpy(chunk.y_fs.astype(np.int64, copy=False)),
        "event_id": torch.from_numpy(chunk.event_id.astype(np.int64, copy=False)),
    }
    if include_p4:
        values["p4"] = torch.from_numpy(np.ascontiguousarray(chunk.p4, dtype=np.float32))
    batch = Batch(batch=torch.from_numpy(graph_of_node), ptr=node_ptr, **values)

    # the bookkeeping Batch.from_data_list would leave, so that indexing and to_data_list() work
    per_graph = torch.arange(num_graphs + 1)
    zeros = torch.zeros(num_graphs, dtype=torch.long)
    node_keys = ("x", "x_cat", "p4")
    batch._num_graphs = num_graphs
    batch._slice_dict = {}
    for key in values:
        if key in node_keys:
            batch._slice_dict[key] = node_ptr
        elif key.startswith("edge"):
            batch._slice_dict[key] = edge_ptr
        else:
            batch._slice_dict[key] = per_graph
    batch._inc_dict = {key: node_ptr[:-1] if key == "edge_index" else zeros for key in values}
    return batch
