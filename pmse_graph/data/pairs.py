"""Index arrays of the ordered particle pairs inside each event, built without Python loops."""

from __future__ import annotations

import numpy as np

from pmse_graph.data.chunk import counts_to_offsets


def ordered_pairs(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (source, target) node indices of every ordered pair of distinct particles in each event.

    Pairs come grouped by target node, targets in increasing order, so an event
    with n particles contributes n * (n - 1) consecutive pairs.

    Args:
        offsets: start of each event in the node arrays, shape ``(num_events + 1,)``.

    Returns:
        Two int64 arrays of shape ``(num_pairs,)``.
    """
    source, target, _ = ordered_pairs_with_reverse(offsets)
    return source, target


def ordered_pairs_with_reverse(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (source, target, reverse) as :func:`ordered_pairs` orders them.

    ``reverse[e]`` is the position of the pair (target[e] -> source[e]), so symmetric
    pair features can be computed once per unordered pair and copied to both directions.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    pair_counts = counts * np.maximum(counts - 1, 0)
    pair_offsets = counts_to_offsets(pair_counts)
    num_pairs = int(pair_offsets[-1])
    if num_pairs == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()

    # per node: its event's size and its place in the event; each node is the target of n - 1 pairs
    num_nodes = int(offsets[-1])
    node_event = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    node_others = counts[node_event] - 1
    node_local = np.arange(num_nodes, dtype=np.int64) - offsets[node_event]
    node_first_pair = counts_to_offsets(node_others)[:-1]

    # per pair: repeat the node values, then the r-th pair of a target takes the r-th other particle
    target = np.repeat(np.arange(num_nodes, dtype=np.int64), node_others)
    target_local = np.repeat(node_local, node_others)
    others = np.repeat(node_others, node_others)
    rank = np.arange(num_pairs, dtype=np.int64) - np.repeat(node_first_pair, node_others)
    source_local = rank + (rank >= target_local)
    source = target - target_local + source_local

    # position of the reverse pair: the pair with target source_local and source target_local
    event_first_pair = np.repeat(pair_offsets[node_event], node_others)
    reverse = event_first_pair + source_local * others + target_local - (target_local > source_local)
    return source, target, reverse
