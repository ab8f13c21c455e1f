"""Tests of the t-SNE class map and the figure helpers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from pmse_graph.downstream.plots import plot_class_map, save_figure, top_classes, tsne_map


def test_top_classes_order_and_unknown():
    classes = np.array([3, 3, 1, 1, 2, -1, -1, -1, 5])
    assert top_classes(classes, 3).tolist() == [1, 3, 2]


def test_tsne_map_keeps_top_classes_and_separates_them(tmp_path):
    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(25), 12)
    classes[:6] = -1
    vectors = (rng.normal(size=(25, 60)) * 10)[np.maximum(classes, 0)] + rng.normal(size=(300, 60))
    frame = tsne_map(vectors, classes, top=20, max_points=200, seed=0)
    assert len(frame) == 200
    assert set(frame["class"]) <= set(top_classes(classes, 20))
    assert np.isfinite(frame[["tsne_x", "tsne_y"]].to_numpy()).all()
    np.testing.assert_array_equal(classes[frame["row"]], frame["class"])
    # events of one class sit closer together than events of different classes
    points = frame[["tsne_x", "tsne_y"]].to_numpy()
    same = frame["class"].to_numpy()[:, None] == frame["class"].to_numpy()[None, :]
    distance = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
    assert distance[same].mean() < 0.5 * distance[~same].mean()

    path = plot_class_map(frame, path=tmp_path / "map.png", class_names={0: "pi+ pi- pi0"})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tsne_map_skips_too_few_events():
    assert tsne_map(np.zeros((6, 3)), np.array([-1, -1, -1, 0, 0, 1])) is None


def test_save_figure_is_atomic(tmp_path):
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    path = save_figure(figure, tmp_path / "sub" / "line.png")
    assert path.is_file()
    assert [item.name for item in path.parent.iterdir()] == ["line.png"]
