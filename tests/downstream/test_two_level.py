"""Tests of two-level k-means: centroid allotment, the centroid tree and the group-wise search."""

from __future__ import annotations

import numpy as np
import pytest

from pmse_graph.downstream import two_level
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
    assert allotted[4] > allotted[1] > allotted[5]
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
    one_group, _ = search_two_level(vectors, centroids, tree, probe=1)
    two_groups, _ = search_two_level(vectors, centroids, tree, probe=2)
    assert (two_groups <= one_group + 1e-4).all()
    assert two_groups.mean() < one_group.mean()


def test_refinement_lowers_objective(trained):
    vectors, centroids, tree, _ = trained
    refined, _ = refine_two_level(vectors, centroids, tree, iterations=2, probe=2)
    before, _ = search_two_level(vectors, centroids, tree, probe=2)
    after, _ = search_two_level(vectors, refined, tree, probe=2)
    assert not np.array_equal(refined, centroids)
    assert after.mean() < before.mean()


def test_probe_checked(trained):
    vectors, centroids, tree, _ = trained
    with pytest.raises(ConfigError, match="probe"):
        search_two_level(vectors, centroids, tree, probe=0)


def test_tree_with_empty_group_rejected():
    with pytest.raises(DataError, match="1 of them have none"):
        CentroidTree(np.zeros((3, 2), np.float32), np.array([0, 0, 2]))


@pytest.mark.parametrize(
    ("group", "message"),
    [(np.array([0, 3]), r"lie in \[0, 3\)"), (np.array([0.0, 1.0]), "integer"), (np.array([], np.int64), "non-empty"), (np.array([1, 0, 2]), "sorted")],
)
def test_invalid_tree_rejected(group, message):
    with pytest.raises(DataError, match=message):
        CentroidTree(np.zeros((3, 2), np.float32), group)


def test_centroids_must_match_tree(trained):
    vectors, centroids, tree, _ = trained
    with pytest.raises(DataError, match="describes 200 centroids"):
        search_two_level(vectors[:10], centroids[:150], tree)
    with pytest.raises(DataError, match="describes 200 centroids"):
        search_two_level(vectors[:10], centroids[:, 0], tree)
    with pytest.raises(DataError, match=r"Expected events of shape \(N, 8\)"):
        search_two_level(vectors[:10, :5], centroids, tree)


def test_nan_event_rejected(trained):
    vectors, centroids, tree, _ = trained
    events = vectors[:20].copy()
    events[7, 2] = np.inf
    with pytest.raises(DataError, match="1 events contain NaN or infinity, the first at row 7"):
        search_two_level(events, centroids, tree, probe=2)


def test_probe_above_groups_is_exact(trained):
    vectors, centroids, tree, _ = trained
    distance, label = search_two_level(vectors[:300], centroids, tree, probe=1000)
    exact_distance, exact_label = exact_nearest(vectors[:300], centroids)
    np.testing.assert_array_equal(label, exact_label)
    np.testing.assert_allclose(distance, exact_distance, rtol=1e-4, atol=1e-3)


def test_single_group_and_single_centroid():
    vectors = blobs(300, 3, 4)
    tree = CentroidTree(vectors[:1].copy(), np.zeros(1, np.int64))
    distance, label = search_two_level(vectors, vectors[:1].copy(), tree, probe=2)
    assert (label == 0).all()
    np.testing.assert_allclose(distance, ((vectors - vectors[0]) ** 2).sum(1), rtol=1e-4, atol=1e-3)


def test_float64_strided_events_accepted(trained):
    vectors, centroids, tree, _ = trained
    wide = np.repeat(vectors[:200].astype(np.float64), 2, axis=0)[::2]
    _, label = search_two_level(wide, centroids, tree, probe=2)
    _, expected = search_two_level(vectors[:200], centroids, tree, probe=2)
    np.testing.assert_array_equal(label, expected)


def test_far_from_origin_stays_exact():
    vectors = blobs(3000, 20, 8) + 1000.0
    centroids, tree, _ = fit_two_level(vectors, k=60, niter=10, seed=0, max_points_per_centroid=256, gpu=False)
    distance, label = search_two_level(vectors, centroids, tree, probe=len(tree.coarse))
    exact_distance, exact_label = exact_nearest(vectors.astype(np.float64), centroids.astype(np.float64))
    assert (label == exact_label).mean() > 0.999
    np.testing.assert_allclose(distance, exact_distance, rtol=1e-3, atol=1e-2)


def test_score_blocks_give_same_result(trained, monkeypatch):
    vectors, centroids, tree, _ = trained
    whole = search_two_level(vectors, centroids, tree, probe=2)
    monkeypatch.setattr(two_level, "MAX_SCORES", 50)
    blocked = search_two_level(vectors, centroids, tree, probe=2)
    np.testing.assert_array_equal(blocked[1], whole[1])
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-5, atol=1e-4)


def test_identical_events_get_no_idle_centroids():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4000, 6)).astype(np.float32)
    vectors[:2000] = vectors[0]
    centroids, tree, _ = fit_two_level(vectors, k=400, niter=10, seed=0, max_points_per_centroid=256, gpu=False)
    _, label = search_two_level(vectors, centroids, tree, probe=2)
    group_of_duplicate = tree.group[label[0]]
    assert np.bincount(tree.group)[group_of_duplicate] < 100
    assert len(np.unique(label)) > 0.9 * 400
