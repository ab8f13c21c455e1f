"""Tests of the exact and IVF nearest-neighbour search shared by kNN, anomaly and clustering."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pmse_graph.downstream.neighbours import build_search_index, search_batched
from pmse_graph.errors import ConfigError, DataError


def clustered_points(n: int, dim: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(50, dim)) * 5
    return (means[rng.integers(0, 50, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def brute_force(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    squared = ((queries[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
    return np.argsort(squared, axis=1, kind="stable")[:, :k]


def test_exact_index_matches_brute_force():
    reference = clustered_points(500, 6)
    queries = clustered_points(40, 6, seed=1)
    index = build_search_index(reference)
    distance, neighbour = search_batched(index, queries, 3, batch_size=7)
    assert index.is_exact
    np.testing.assert_array_equal(neighbour, brute_force(reference, queries, 3))
    expected = ((queries[:, None, :] - reference[neighbour]) ** 2).sum(-1)
    np.testing.assert_allclose(distance, expected, rtol=1e-4, atol=1e-4)


def test_ivf_index_finds_most_true_neighbours():
    reference = clustered_points(4000, 8)
    queries = clustered_points(300, 8, seed=1)
    index = build_search_index(reference, exact_max_points=1000, nprobe=8)
    _, neighbour = search_batched(index, queries, 5)
    assert index.description == f"ivf nlist={int(4 * np.sqrt(4000))} nprobe=8"
    truth = brute_force(reference, queries, 5)
    recall = np.mean([len(set(found) & set(true)) / 5 for found, true in zip(neighbour, truth)])
    assert recall > 0.9


def test_ivf_short_lists_searched_exactly(caplog):
    # one probed list of a 253-list index contains about 16 vectors, fewer than k = 40
    reference = clustered_points(4000, 4)
    queries = clustered_points(50, 4, seed=2)
    index = build_search_index(reference, exact_max_points=100, nprobe=1)
    _, raw = index.index.search(queries, 40)
    incomplete = (raw < 0).any(axis=1)
    with caplog.at_level(logging.INFO, logger="pmse_graph.downstream.neighbours"):
        _, neighbour = search_batched(index, queries, 40)
    assert incomplete.sum() > 10
    assert (neighbour >= 0).all()
    truth = brute_force(reference, queries[incomplete], 40)
    np.testing.assert_array_equal(np.sort(neighbour[incomplete], axis=1), np.sort(truth, axis=1))
    assert f"{incomplete.sum()} of 50 queries found fewer than 40 neighbours" in caplog.text


def test_inner_product_metric_ranks_by_similarity():
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071]], np.float32)
    similarity, neighbour = search_batched(build_search_index(reference, metric="inner_product"), np.array([[0.6, 0.8]], np.float32), 2)
    assert neighbour[0].tolist() == [2, 1]
    assert similarity[0, 0] == pytest.approx(0.6 * 0.7071 + 0.8 * 0.7071, rel=1e-4)


def test_float64_and_strided_input_accepted():
    reference = clustered_points(200, 6).astype(np.float64)[:, ::2]
    _, neighbour = search_batched(build_search_index(reference), reference[:5], 1)
    assert neighbour[:, 0].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("k", [0, 11])
def test_k_outside_reference_rejected(k):
    index = build_search_index(np.zeros((10, 3), np.float32))
    with pytest.raises(ConfigError, match=f"got k={k}"):
        search_batched(index, np.zeros((1, 3), np.float32), k)


def test_nan_query_rejected():
    index = build_search_index(clustered_points(100, 3))
    queries = clustered_points(5, 3, seed=1)
    queries[3, 1] = np.nan
    with pytest.raises(DataError, match="1 nearest-neighbour queries contain NaN or infinity, the first at query 3"):
        search_batched(index, queries, 2)


def test_bad_arguments_rejected():
    with pytest.raises(ConfigError, match="metric"):
        build_search_index(np.zeros((4, 2), np.float32), metric="cosine")
    with pytest.raises(ConfigError, match="zero reference"):
        build_search_index(np.zeros((0, 2), np.float32))
    with pytest.raises(ConfigError, match="nprobe"):
        build_search_index(np.zeros((4, 2), np.float32), nprobe=0)
