"""Tests of the classification metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from pmse_graph.downstream import class_metrics
from pmse_graph.errors import DataError

# five events of three classes: class 0 -> (0, 1), class 1 -> (1, 1), class 2 -> (0)
Y_TRUE = np.array([0, 0, 1, 1, 2])
Y_PRED = np.array([0, 1, 1, 1, 0])


def test_per_class_scores_hand_values():
    table = class_metrics.per_class_scores(Y_TRUE, Y_PRED, num_classes=3)
    np.testing.assert_allclose(table["precision"], [0.5, 2 / 3, 0.0])
    np.testing.assert_allclose(table["recall"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(table["f1"], [0.5, 0.8, 0.0])
    assert table["support"].tolist() == [2, 2, 1]
    assert table["predicted"].tolist() == [2, 3, 0]


def test_summary_scores_hand_values():
    summary = class_metrics.summary_scores(class_metrics.per_class_scores(Y_TRUE, Y_PRED, num_classes=3))
    assert summary["accuracy"] == pytest.approx(3 / 5)
    assert summary["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert summary["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 1 * 0.0) / 5)
    assert summary["macro_precision"] == pytest.approx((0.5 + 2 / 3) / 3)
    assert summary["events"] == 5


def test_summary_skips_empty_classes():
    table = class_metrics.per_class_scores(np.array([0, 1]), np.array([0, 1]), num_classes=4)
    summary = class_metrics.summary_scores(table)
    assert summary["macro_f1"] == pytest.approx(1.0)
    assert summary["classes_with_events"] == 2


def test_where_classes_go_shares():
    table = class_metrics.where_classes_go(Y_TRUE, Y_PRED, num_classes=3)
    rows = {(t, p): s for t, p, s in zip(table["true_index"], table["predicted_index"], table["share"])}
    assert rows == {(0, 0): 0.5, (0, 1): 0.5, (1, 1): 1.0, (2, 0): 1.0}
    assert table.groupby("true_index")["share"].sum().tolist() == [1.0, 1.0, 1.0]


def test_where_classes_go_min_share():
    table = class_metrics.where_classes_go(np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0, 1, 1]), num_classes=2, min_share=0.5)
    assert list(zip(table["true_index"], table["predicted_index"])) == [(0, 0), (1, 1)]


def test_operating_points_hand_values():
    # class 1 scores, events sorted by score: .9 T, .8 T, .5 F, .4 T, .1 F
    p1 = np.array([0.9, 0.8, 0.4, 0.5, 0.1])
    probabilities = np.stack([1 - p1, p1], axis=1)
    y = np.array([1, 1, 1, 0, 0])
    table = class_metrics.operating_points(probabilities, y, min_precision=0.99, min_recall=0.9)
    row = table.set_index("class_index").loc[1]
    assert row["recall_at_precision"] == pytest.approx(2 / 3)
    assert row["threshold_at_precision"] == pytest.approx(0.8)
    assert row["precision_at_recall"] == pytest.approx(0.75)
    assert row["threshold_at_recall"] == pytest.approx(0.4)
    assert row["support"] == 3


def test_operating_points_unreachable_target():
    probabilities = np.array([[0.5, 0.5], [0.5, 0.5]])
    table = class_metrics.operating_points(probabilities, np.array([0, 1]), min_precision=0.99)
    assert table["recall_at_precision"].tolist() == [0.0, 0.0]
    assert table["threshold_at_precision"].isna().all()


def test_operating_points_class_without_events():
    table = class_metrics.operating_points(np.array([[0.7, 0.2, 0.1]]), np.array([0]))
    assert np.isnan(table.loc[2, "average_precision"])
    assert table.loc[0, "recall_at_precision"] == 1.0


def test_softmax_temperature():
    logits = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(class_metrics.softmax(logits), [[0.25, 0.75]])
    np.testing.assert_allclose(class_metrics.softmax(logits, temperature=1e6), [[0.5, 0.5]], atol=1e-6)


def test_fit_temperature_recovers_scale():
    rng = np.random.default_rng(0)
    base = rng.normal(scale=2.0, size=(20_000, 5))
    probabilities = class_metrics.softmax(base)
    labels = (probabilities.cumsum(axis=1) > rng.random((len(base), 1))).argmax(axis=1)
    # logits three times too sharp: the fitted temperature undoes the factor
    assert class_metrics.fit_temperature(3.0 * base, labels) == pytest.approx(3.0, rel=0.1)


def test_fit_temperature_bounded_when_separable():
    # the likelihood of perfectly separated events rises as T falls towards 0
    logits = np.array([[1.0, -1.0], [-1.0, 1.0]])
    temperature = class_metrics.fit_temperature(logits, np.array([0, 1]))
    assert class_metrics.TEMPERATURE_RANGE[0] <= temperature < 1.0


def test_fit_temperature_rejects_nan():
    with pytest.raises(DataError, match="NaN"):
        class_metrics.fit_temperature(np.array([[np.nan, 0.0]]), np.array([0]))


def test_single_event_scores():
    table = class_metrics.per_class_scores(np.array([1]), np.array([1]), num_classes=2)
    assert class_metrics.summary_scores(table)["accuracy"] == 1.0


def test_labels_out_of_range_rejected():
    with pytest.raises(DataError, match="0..2"):
        class_metrics.per_class_scores(np.array([0, 3]), np.array([0, 1]), num_classes=3)
    with pytest.raises(DataError, match="same 1-d shape"):
        class_metrics.per_class_scores(np.array([0, 1]), np.array([0]), num_classes=3)


def test_confusion_rows_are_true_classes():
    matrix = class_metrics.class_confusion(Y_TRUE, Y_PRED, num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
