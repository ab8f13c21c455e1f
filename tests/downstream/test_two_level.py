"""Tests of two-level k-means: centroid allotment, the centroid tree and the group-wise search."""

from __future__ import annotations

import numpy as np
import pytest

from pmse_graph.downstream.two_level import CentroidTree, allot_centroids, fit_two_level, refine_two_level, search_two_level
from pmse_graph.errors import ConfigError, DataError


def blobs(n: int, centres: int, dim: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim)) * 6
    return (means[rng.integers(0, centres, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def exact_nearest(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    squared = ((vectors[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    return squared.min(1), squared.argmin(1)


@pytest.fixture(scope="module")
def trained():
    vectors = blobs(6000, 40, 8)
    centroids, tree, objective = fit_two_level(vectors, k=200, niter=10, seed=0, max_points_per_centroid=256, gpu=False)
    return vectors, centroids, tree, objective


def test_allot_centroids_bounds():
    sizes = np.array([1, 50, 0, 3, 200, 7])
    allotted = allot_centroids(sizes, 40)
    assert allotted.sum() == 40
    assert allotted[2] == 0
    assert (allotted[sizes > 0] >= 1).all()
    assert (allotted <= sizes).all()


def test_tree_groups_cover_centroids(trained):
    _, centroids, tree, _ = trained
    assert len(tree.coarse) == 14  # round(sqrt(200))
    assert tree.group.shape == (200,)
    assert (np.diff(tree.group) >= 0).all()
    assert tree.bounds[0] == 0
    assert tree.bounds[-1] == len(centroids)


def test_probe_one_reproduces_training_objective(trained):
    vectors, centroids, tree, objective = trained
    distance, _ = search_two_level(vectors, centroids, tree, probe=1)
    assert distance.mean() == pytest.approx(objective, rel=1e-4)


def test_probing_every_group_is_exact(trained):
    vectors, centroids, tree, _ = trained
    distance, label = search_two_level(vectors[:500], centroids, tree, probe=len(tree.coarse))
    exact_distance, exact_label = exact_nearest(vectors[:500], centroids)
    np.testing.assert_array_equal(label, exact_label)
    np.testing.assert_allclose(distance, exact_distance, rtol=1e-4, atol=1e-3)


def test_more_probes_never_farther(trained):
    vectors, centroids, tree, _ = trained
    one, _ = search_two_level(vectors, centroids, tree, probe=1)
    two, _ = search_two_level(vectors, centroids, tree, probe=2)
    assert (two <= one + 1e-4).all()
    assert two.mean() < one.mean()


def test_refinement_lowers_objective(trained):
    vectors, centroids, tree, objective = trained
    _, refined_objective = refine_two_level(vectors, centroids, tree, iterations=2, probe=2)
    assert refined_objective < objective


def test_probe_checked(trained):
    vectors, centroids, tree, _ = trained
    with pytest.raises(ConfigError, match="probe"):
        search_two_level(vectors, centroids, tree, probe=0)


def test_tree_with_empty_group_rejected():
    with pytest.raises(DataError, match="1 empty"):
        CentroidTree(np.zeros((3, 2), np.float32), np.array([0, 0, 2]))
