"""Tests of cluster quality metrics against values computed by hand."""

from __future__ import annotations

from math import comb, log

import numpy as np
import pytest

from pmse_graph.downstream.cluster_metrics import class_spread, cluster_quality, purity
from pmse_graph.errors import ConfigError, DataError

# six events: classes 0,0,0,1,1,1 in clusters 0,0,1,1,1,1, so the contingency table
# (rows classes, columns clusters) is [[2, 1], [0, 3]]
CLASSES = np.array([0, 0, 0, 1, 1, 1])
CLUSTERS = np.array([0, 0, 1, 1, 1, 1])


def entropy(counts: list[int]) -> float:
    total = sum(counts)
    return -sum(c / total * log(c / total) for c in counts if c)


def hand_values() -> dict[str, float]:
    n = 6
    class_entropy = entropy([3, 3])
    cluster_entropy = entropy([2, 4])
    # H(class | cluster): cluster 0 is pure, cluster 1 contains one event of class 0 and three of class 1
    class_given_cluster = -(1 / n * log(1 / 4) + 3 / n * log(3 / 4))
    # H(cluster | class): class 0 splits 2/1, class 1 is whole
    cluster_given_class = -(2 / n * log(2 / 3) + 1 / n * log(1 / 3))
    homogeneity = 1 - class_given_cluster / class_entropy
    completeness = 1 - cluster_given_class / cluster_entropy
    mutual_information = class_entropy - class_given_cluster
    pair_sum = comb(2, 2) + comb(1, 2) + comb(0, 2) + comb(3, 2)
    class_pairs = comb(3, 2) + comb(3, 2)
    cluster_pairs = comb(2, 2) + comb(4, 2)
    expected = class_pairs * cluster_pairs / comb(n, 2)
    ari = (pair_sum - expected) / ((class_pairs + cluster_pairs) / 2 - expected)
    return {
        "purity": (2 + 3) / n,
        "homogeneity": homogeneity,
        "completeness": completeness,
        "nmi": mutual_information / ((class_entropy + cluster_entropy) / 2),
        "ari": ari,
    }


def test_metrics_match_hand_values():
    quality = cluster_quality(CLASSES, CLUSTERS)
    expected = hand_values()
    assert expected["purity"] == pytest.approx(5 / 6)
    assert expected["ari"] == pytest.approx(1.2 / 3.7)
    for name, value in expected.items():
        assert quality[name] == pytest.approx(value, rel=1e-9), name
    assert quality["num_clusters"] == 2
    assert quality["num_classes"] == 2
    assert quality["num_scored"] == 6


def test_purity_alone():
    assert purity(CLASSES, CLUSTERS) == pytest.approx(5 / 6)
    assert purity(np.array([3, 3, 4]), np.array([9, 9, 9])) == pytest.approx(2 / 3)
    assert purity(np.array([1, 2, 3]), np.array([0, 1, 2])) == 1.0


def test_perfect_and_relabelled_clustering():
    quality = cluster_quality(CLASSES, 1 - CLASSES)
    for name in ("purity", "nmi", "ari", "homogeneity", "completeness"):
        assert quality[name] == pytest.approx(1.0), name


def test_unknown_classes_and_noise_excluded():
    classes = np.concatenate([CLASSES, [-1, -1, 0]])
    clusters = np.concatenate([CLUSTERS, [0, 1, -1]])
    quality = cluster_quality(classes, clusters)
    assert quality["num_unknown_class"] == 2
    assert quality["num_noise"] == 1
    assert quality["noise_fraction"] == pytest.approx(1 / 9)
    assert quality["num_scored"] == 6
    assert quality["purity"] == pytest.approx(5 / 6)
    assert quality["nmi"] == pytest.approx(hand_values()["nmi"])


def test_noise_as_cluster():
    classes = np.array([0, 0, 1, 1])
    clusters = np.array([-1, -1, 0, 0])
    quality = cluster_quality(classes, clusters, noise="as_cluster")
    assert quality["num_scored"] == 4
    assert quality["purity"] == 1.0
    assert quality["num_clusters"] == 1
    excluded = cluster_quality(classes, clusters)
    assert excluded["num_scored"] == 2
    assert excluded["num_classes"] == 1


def test_all_noise_gives_no_scores():
    quality = cluster_quality(np.array([0, 1, 1]), np.array([-1, -1, -1]))
    assert quality["nmi"] is None
    assert quality["purity"] is None
    assert quality["noise_fraction"] == 1.0
    assert quality["num_clusters"] == 0


def test_bad_input_rejected():
    with pytest.raises(DataError, match="equal 1-d shape"):
        cluster_quality(np.zeros(3), np.zeros(4))
    with pytest.raises(ConfigError, match="noise policy"):
        cluster_quality(CLASSES, CLUSTERS, noise="ignore")


def test_class_spread_table():
    classes = np.array([0, 0, 0, 0, 1, 1, -1, 2])
    clusters = np.array([5, 5, 7, -1, 7, 5, 5, -1])
    table = class_spread(classes, clusters, top=2)
    assert table["class"].tolist() == [0, 1, 2]
    assert table["events"].tolist() == [4, 2, 1]
    assert table["num_clusters"].tolist() == [2, 2, 0]
    assert table["noise_share"].tolist() == pytest.approx([0.25, 0.0, 1.0])
    assert table["cluster_1"].tolist() == [5, 5, -1]
    assert table["share_1"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert table["cluster_2"].tolist() == [7, 7, -1]
    assert table["share_2"].tolist() == pytest.approx([0.25, 0.5, 0.0])


def test_class_spread_without_known_classes():
    table = class_spread(np.array([-1, -1]), np.array([0, 1]))
    assert len(table) == 0
    assert "share_3" in table.columns
