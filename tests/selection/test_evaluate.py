"""Tests of the per-class metrics, the recall at 99% precision and the precision-recall plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmse_graph.selection.evaluate import (
    class_fractions,
    class_metrics,
    has_truth,
    plot_precision_recall,
    precision_target,
    recall_at_precision,
)
from pmse_graph.selection.selection import CLASSES, NOT_SELECTED, OTHER

RHO_MINUS, RHO_PLUS, RHO_ZERO, NONRESONANT = CLASSES


def test_class_metrics_counts() -> None:
    truth = np.array([RHO_MINUS, RHO_MINUS, RHO_MINUS, RHO_PLUS, OTHER, OTHER], dtype=object)
    predicted = np.array([RHO_MINUS, RHO_MINUS, NOT_SELECTED, RHO_MINUS, NOT_SELECTED, RHO_PLUS], dtype=object)
    metrics = class_metrics(truth, predicted)

    assert metrics[RHO_MINUS]["precision"] == pytest.approx(2 / 3)
    assert metrics[RHO_MINUS]["recall"] == pytest.approx(2 / 3)
    assert metrics[RHO_MINUS]["f1"] == pytest.approx(2 / 3)
    assert metrics[RHO_PLUS]["precision"] == 0.0
    assert metrics[RHO_PLUS]["recall"] == 0.0
    assert metrics[RHO_PLUS]["f1"] is None
    # no true and no predicted events: undefined, not zero
    assert metrics[RHO_ZERO]["precision"] is None
    assert metrics[RHO_ZERO]["recall"] is None
    # the wrongly predicted events, by their truth
    assert metrics[RHO_MINUS]["wrong_by_truth"] == {RHO_PLUS: 1, RHO_ZERO: 0, NONRESONANT: 0, OTHER: 0}
    assert metrics[RHO_PLUS]["wrong_by_truth"][OTHER] == 1


def test_class_fractions_sum_to_one() -> None:
    truth = np.array([RHO_MINUS, RHO_ZERO, NONRESONANT, OTHER, OTHER], dtype=object)
    fractions = class_fractions(truth)

    assert sum(fractions.values()) == pytest.approx(1.0)
    assert fractions[OTHER] == pytest.approx(0.4)


def scan_point(tightness: float, precision: float, recall: float) -> dict:
    entry = {"precision": precision, "recall": recall, "f1": None, "true": 10, "predicted": 5, "correct": 4}
    empty = {"precision": None, "recall": None, "f1": None, "true": 0, "predicted": 0, "correct": 0}
    return {"tightness": tightness, "classes": {name: entry if name == RHO_MINUS else empty for name in CLASSES}}


def test_recall_at_99_precision_picks_best_point() -> None:
    scan = [scan_point(0.0, 0.95, 0.8), scan_point(0.5, 0.991, 0.6), scan_point(1.0, 0.999, 0.3)]
    result = recall_at_precision(scan)

    assert result[RHO_MINUS] == {"recall": 0.6, "tightness": 0.5}
    assert result[RHO_PLUS] == {"recall": None, "tightness": None}


def test_recall_at_99_precision_none_when_unreached() -> None:
    result = recall_at_precision([scan_point(0.0, 0.9, 0.8), scan_point(1.0, 0.98, 0.2)])

    assert result[RHO_MINUS]["recall"] is None


def test_has_truth() -> None:
    assert has_truth(np.array([RHO_MINUS, OTHER], dtype=object))
    assert not has_truth(np.array(["unknown", "unknown"], dtype=object))
    assert not has_truth(np.array([], dtype=object))


def test_plot_written(tmp_path: Path) -> None:
    path = tmp_path / "pr.png"
    plot_precision_recall([scan_point(0.0, 0.9, 0.8), scan_point(1.0, 0.99, 0.4)], path, working_point=1.0)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))


FRACTIONS = {RHO_MINUS: 0.3, RHO_PLUS: 0.3, RHO_ZERO: 0.2, NONRESONANT: 0.1, OTHER: 0.1}


def contaminated_point(tightness: float, precision: float) -> dict:
    point = scan_point(tightness, precision, 0.5)
    entry = dict(point["classes"][RHO_MINUS])
    entry["predicted"] = 100
    entry["wrong_by_truth"] = {RHO_PLUS: 0, RHO_ZERO: 0, NONRESONANT: round(100 * (1 - precision)), OTHER: 0}
    point["classes"] = {**point["classes"], RHO_MINUS: entry}
    return point


def test_precision_target_none_reached() -> None:
    summary = precision_target([contaminated_point(0.0, 0.90), contaminated_point(1.0, 0.96)], fractions=FRACTIONS)

    assert summary["reached_by"] == []
    assert summary["lines"][0] == "No class reaches 99% precision at any tightness evaluated."
    best = summary["classes"][RHO_MINUS]
    assert best["reached"] is False
    assert best["best_precision"] == pytest.approx(0.96)
    assert best["tightness"] == 1.0
    assert best["contamination"] == {NONRESONANT: pytest.approx(0.04)}
    assert "pi+ rho-: highest precision 0.960 at tightness 1.00; wrongly predicted: 4.0% pi+ pi- pi0." in summary["lines"]
    assert f"{RHO_PLUS}: never predicted." in summary["lines"]
    assert summary["lines"][-1].startswith("Class fractions of the sample: pi+ rho- 0.300")
    assert summary["statement"] == " ".join(summary["lines"])


def test_precision_target_names_reached_classes() -> None:
    summary = precision_target([contaminated_point(0.5, 0.995), contaminated_point(1.0, 0.97)], fractions=FRACTIONS)

    assert summary["reached_by"] == [RHO_MINUS]
    assert summary["classes"][RHO_MINUS]["tightness"] == 0.5
    assert summary["lines"][0] == "pi+ rho- reaches 99% precision; the other classes do not."
