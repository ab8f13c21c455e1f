"""Metrics of a multi-class classifier: per-class scores, confusion, calibration, operating points.

* :func:`per_class_scores` and :func:`summary_scores`: precision, recall, F1 and support per
  class, with macro and support-weighted averages and the accuracy.
* :func:`where_classes_go`: for each true class, the share of its events that each predicted
  class receives, the table that shows which classes absorb which.
* :func:`fit_temperature` and :func:`softmax`: temperature scaling (Guo et al. 2017, "On
  Calibration of Modern Neural Networks"), one scalar fitted by minimising the negative
  log-likelihood of held-out labelled events.
* :func:`operating_points`: per class, one-vs-rest, the best recall at a minimum precision and
  the best precision at a minimum recall, with the score threshold that reaches it.

Class labels are integer indices ``0..num_classes-1`` everywhere in this module; callers map
them to decay-tree ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve

from pmse_graph.errors import DataError

logger = logging.getLogger(__name__)


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise DataError(f"Expected true and predicted labels of the same 1-d shape (got {y_true.shape} and {y_pred.shape})")
    for name, values in (("true", y_true), ("predicted", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise DataError(f"The {name} labels must lie in 0..{num_classes - 1} (got {values.min()}..{values.max()})")
    return y_true, y_pred


def class_confusion(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Count events per (true class, predicted class).

    Returns:
        int64 matrix of shape (num_classes, num_classes), rows = true class.
    """
    y_true, y_pred = _check_labels(y_true, y_pred, num_classes)
    return confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)).astype(np.int64)


def per_class_scores(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int) -> pd.DataFrame:
    """Compute precision, recall, F1 and support of every class.

    A class never predicted has precision 0, and a class without events has recall 0; both
    then have F1 0, which is how scikit-learn's ``zero_division=0`` counts them too.

    Returns:
        One row per class index with columns ``class_index``, ``precision``, ``recall``,
        ``f1``, ``support`` (true events) and ``predicted`` (events assigned to the class).
    """
    matrix = class_confusion(y_true, y_pred, num_classes=num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(true_positive, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros(num_classes), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return pd.DataFrame(
        {"class_index": np.arange(num_classes), "precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}
    )


def summary_scores(table: pd.DataFrame) -> dict[str, float]:
    """Average a :func:`per_class_scores` table: accuracy, macro and support-weighted means.

    Macro means run over the classes with at least one true event, so an empty class does not
    pull the average to 0.
    """
    present = table[table["support"] > 0]
    total = int(table["support"].sum())
    if total == 0:
        raise DataError("No evaluated events: every class has support 0")
    weights = present["support"] / total
    accuracy = float((table["recall"] * table["support"]).sum() / total)
    scores = {"accuracy": accuracy, "events": total, "classes_with_events": int(len(present))}
    for metric in ("precision", "recall", "f1"):
        scores[f"macro_{metric}"] = float(present[metric].mean())
        scores[f"weighted_{metric}"] = float((present[metric] * weights).sum())
    return scores


def where_classes_go(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int, min_share: float = 0.0) -> pd.DataFrame:
    """List, for every true class, where its events end up.

    Args:
        y_true: true class index per event.
        y_pred: predicted class index per event.
        num_classes: number of classes.
        min_share: leave out destinations that receive less than this share of a class (default 0,
            which keeps every destination with at least one event).

    Returns:
        Rows ``true_index``, ``predicted_index``, ``events``, ``share`` (of the true class's
        events), sorted by true class and then by falling share. The diagonal rows are kept, so
        each true class's shares sum to 1 when ``min_share`` is 0.
    """
    matrix = class_confusion(y_true, y_pred, num_classes=num_classes)
    support = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, support, out=np.zeros(matrix.shape), where=support > 0)
    true_index, predicted_index = np.nonzero(matrix)
    table = pd.DataFrame(
        {
            "true_index": true_index,
            "predicted_index": predicted_index,
            "events": matrix[true_index, predicted_index],
            "share": share[true_index, predicted_index],
        }
    )
    table = table[table["share"] >= min_share]
    return table.sort_values(["true_index", "share"], ascending=[True, False], kind="stable").reset_index(drop=True)


def softmax(logits: np.ndarray, *, temperature: float = 1.0) -> np.ndarray:
    """Return softmax(logits / temperature) along the last axis, as float64.

    Shapes:
        logits: (num_events, num_classes) -> (num_events, num_classes).
    """
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


TEMPERATURE_RANGE = (1e-2, 1e2)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 200) -> float:
    """Fit the temperature T that minimises the negative log-likelihood of softmax(logits / T).

    The fit runs over log T with L-BFGS, so T stays positive. The result is clipped to
    ``TEMPERATURE_RANGE``: on events that the scores separate perfectly the likelihood keeps
    rising as T falls to 0, and such a T would turn every probability into 0 or 1.

    Args:
        logits: scores of held-out labelled events, shape (num_events, num_classes).
        labels: their class indices, shape (num_events,).
        max_iter: L-BFGS iterations (default 200).

    Raises:
        DataError: when there are no events or the logits are not finite.
    """
    logits_t = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if logits_t.ndim != 2 or logits_t.shape[0] == 0 or logits_t.shape[0] != labels_t.shape[0]:
        raise DataError(f"Expected (num_events, num_classes) logits with one label per event (got {tuple(logits_t.shape)} and {tuple(labels_t.shape)})")
    if not torch.isfinite(logits_t).all():
        raise DataError("Cannot fit a temperature: the logits contain NaN or inf")
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits_t / log_temperature.exp(), labels_t)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = float(log_temperature.detach().exp())
    low, high = TEMPERATURE_RANGE
    temperature = min(max(fitted, low), high) if np.isfinite(fitted) else 1.0
    if temperature != fitted:
        logger.info("temperature scaling: fitted T = %.3g clipped to %.3g", fitted, temperature)
    logger.info("temperature scaling: T = %.4g on %d events", temperature, logits_t.shape[0])
    return temperature


def _best_recall_at_precision(precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray, target: float) -> tuple[float, float]:
    # precision_recall_curve appends a final (precision 1, recall 0) point that has no threshold
    ok = np.flatnonzero(precision[:-1] >= target)
    if ok.size == 0:
        return 0.0, float("nan")
    best = ok[np.argmax(recall[ok])]
    return float(recall[best]), float(thresholds[best])


def _best_precision_at_recall(precision: np.ndarray, recall: np.ndarray, thresholds: np.ndarray, target: float) -> tuple[float, float]:
    ok = np.flatnonzero(recall[:-1] >= target)
    if ok.size == 0:
        return 0.0, float("nan")
    best = ok[np.argmax(precision[ok])]
    return float(precision[best]), float(thresholds[best])


def operating_points(
    probabilities: np.ndarray,
    y_true: np.ndarray,
    *,
    min_precision: float = 0.99,
    min_recall: float = 0.90,
) -> pd.DataFrame:
    """Find per-class operating points of one-vs-rest selections on calibrated scores.

    Selecting the events whose probability for class c is at least a threshold gives one
    (precision, recall) point per threshold. This returns, per class, the highest recall among
    thresholds whose precision reaches ``min_precision``, and the highest precision among
    thresholds whose recall reaches ``min_recall``. A class that never reaches the target gets
    0 and a NaN threshold.

    Args:
        probabilities: calibrated class probabilities, shape (num_events, num_classes).
        y_true: true class index per event, shape (num_events,).
        min_precision: precision target (default 0.99).
        min_recall: recall target (default 0.90).

    Returns:
        One row per class index: ``class_index``, ``support``, ``recall_at_precision``,
        ``threshold_at_precision``, ``precision_at_recall``, ``threshold_at_recall``,
        ``average_precision`` (NaN for a class without events).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise DataError(f"Expected (num_events, num_classes) probabilities with one label per event (got {probabilities.shape} and {y_true.shape})")
    rows = []
    for class_index in range(probabilities.shape[1]):
        positive = y_true == class_index
        support = int(positive.sum())
        row = {"class_index": class_index, "support": support}
        if support == 0:
            row.update(recall_at_precision=float("nan"), threshold_at_precision=float("nan"), precision_at_recall=float("nan"),
                       threshold_at_recall=float("nan"), average_precision=float("nan"))
            rows.append(row)
            continue
        scores = probabilities[:, class_index]
        precision, recall, thresholds = precision_recall_curve(positive, scores)
        row["recall_at_precision"], row["threshold_at_precision"] = _best_recall_at_precision(precision, recall, thresholds, min_precision)
        row["precision_at_recall"], row["threshold_at_recall"] = _best_precision_at_recall(precision, recall, thresholds, min_recall)
        row["average_precision"] = float(average_precision_score(positive, scores))
        rows.append(row)
    return pd.DataFrame(rows)


def precision_recall_points(probabilities: np.ndarray, y_true: np.ndarray, class_indices: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Return the one-vs-rest (precision, recall) curve of each class in ``class_indices``."""
    curves = {}
    for class_index in class_indices:
        positive = np.asarray(y_true) == class_index
        if positive.any():
            precision, recall, _ = precision_recall_curve(positive, np.asarray(probabilities)[:, class_index])
            curves[int(class_index)] = (precision, recall)
    return curves
