"""Tests of HDBSCAN clustering with a fitted subsample and nearest-neighbour labelling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from pmse_graph.downstream.density import fit_hdbscan
from pmse_graph.downstream.embeddings import EmbeddingStore, EmbeddingWriter
from pmse_graph.errors import ConfigError, DataError


def blobs_with_noise(n: int, centres: int, dim: int, *, noise_share: float = 0.05, seed: int = 0):
    """Unit-width Gaussian blobs 12 apart on average, plus uniform noise labelled -1."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim)) * 12
    blob = rng.integers(0, centres, n)
    vectors = means[blob] + rng.normal(size=(n, dim))
    noisy = rng.random(n) < noise_share
    vectors[noisy] = rng.uniform(-40, 40, size=(noisy.sum(), dim))
    blob[noisy] = -1
    return vectors.astype(np.float32), blob


def test_hdbscan_finds_blobs_and_noise():
    vectors, blob = blobs_with_noise(2000, 6, 8)
    result = fit_hdbscan(vectors, min_cluster_size=20, min_samples=10)
    assert result.num_clusters == 6
    assert not result.all_noise
    assert result.fit_points == 2000
    clustered = blob >= 0
    assert normalized_mutual_info_score(blob[clustered], result.cluster[clustered]) > 0.95
    # most uniform noise events are labelled noise, few blob events are
    assert (result.cluster[~clustered] == -1).mean() > 0.5
    assert (result.cluster[clustered] == -1).mean() < 0.05
    assert result.noise_fraction == pytest.approx((result.cluster == -1).mean())


def test_subsample_then_nearest_neighbour(tmp_path):
    vectors, blob = blobs_with_noise(3000, 5, 6, noise_share=0.0)
    with EmbeddingWriter(tmp_path, 6, shard_size=700) as writer:
        writer.write(vectors, np.arange(3000))
    result = fit_hdbscan(EmbeddingStore.open(tmp_path), min_cluster_size=15, min_samples=5, max_fit_points=600, batch_size=500)
    assert result.fit_points == 600
    assert result.num_clusters == 5
    assert normalized_mutual_info_score(blob, result.cluster) > 0.95


def test_all_noise_is_reported():
    vectors = np.random.default_rng(1).uniform(size=(50, 4)).astype(np.float32)
    result = fit_hdbscan(vectors, min_cluster_size=40, min_samples=5)
    assert result.all_noise
    assert result.num_clusters == 0
    assert (result.cluster == -1).all()
    assert result.noise_fraction == 1.0


def test_tiny_input_names_n_and_parameters():
    vectors = np.zeros((8, 3), np.float32)
    with pytest.raises(DataError, match=r"at least 20 events with min_cluster_size=20 and min_samples=10 \(got n=8\)"):
        fit_hdbscan(vectors, min_cluster_size=20, min_samples=10)
    with pytest.raises(ConfigError, match="min_cluster_size >= 2"):
        fit_hdbscan(vectors, min_cluster_size=1)


def test_excluded_rows_stay_noise():
    vectors, _ = blobs_with_noise(600, 3, 4, noise_share=0.0)
    vectors[[0, 5]] = np.nan
    result = fit_hdbscan(vectors, min_cluster_size=20, min_samples=5, exclude_rows=np.array([0, 5]))
    assert result.cluster[[0, 5]].tolist() == [-1, -1]
    assert result.num_clusters == 3
    with pytest.raises(DataError, match="event ids 0, 5"):
        fit_hdbscan(vectors, min_cluster_size=20, min_samples=5)


@pytest.mark.slow
def test_hdbscan_above_30_dimensions_uses_nndescent():
    # pynndescent's numba compilation takes about 20-30 s on a fresh process
    vectors, blob = blobs_with_noise(2000, 5, 40, noise_share=0.0)
    result = fit_hdbscan(vectors, min_cluster_size=20, min_samples=10)
    assert result.num_clusters == 5
    assert normalized_mutual_info_score(blob, result.cluster) > 0.95


def test_unfitted_noise_stays_noise():
    vectors, blob = blobs_with_noise(4000, 4, 6, noise_share=0.1, seed=3)
    result = fit_hdbscan(vectors, min_cluster_size=15, min_samples=5, max_fit_points=1000)
    noise = blob < 0
    # the nearest-neighbour rule without the reach labelled 0.917 of the noise as noise here
    assert (result.cluster[noise] == -1).mean() > 0.97
    assert (result.cluster[~noise] >= 0).mean() > 0.99


@pytest.mark.parametrize("min_samples", [1, 2, 10])
def test_unfitted_blob_events_clustered(min_samples):
    vectors, blob = blobs_with_noise(5000, 30, 6, noise_share=0.0, seed=4)
    result = fit_hdbscan(vectors, min_cluster_size=20, min_samples=min_samples, max_fit_points=1000)
    assert result.num_clusters >= 25
    assert result.noise_fraction < 0.05
