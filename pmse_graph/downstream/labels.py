"""The labelled/unlabelled split and the top-N class task shared by classification and anomalies.

* :func:`labelled_mask`: a deterministic share of events counts as labelled, chosen by a hash
  of the event id salted differently from the train/val/test split, so that any split of a run
  still divides into labelled and unlabelled halves.
* :func:`calibration_mask`: a second salted hash that sets part of the labelled events aside
  for fitting the score calibration.
* :class:`ClassTask`: the top-N decay-tree classes by labelled event count and the mapping
  between class ids and class indices ``0..N-1``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pmse_graph.data.dataset import hash_unit_interval
from pmse_graph.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# Arbitrary odd constants XOR-ed into the event id before hashing, which makes these draws
# independent of the pretraining split (which hashes the bare event id).
LABELLED_SALT = np.uint64(0x5DEECE66D2B7E151)
CALIBRATION_SALT = np.uint64(0x2545F4914F6CDD1D)


def _salted_share(event_id: np.ndarray, fraction: float, salt: np.uint64, *, name: str) -> np.ndarray:
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"The {name} fraction must lie strictly between 0 and 1 (got {fraction})")
    return hash_unit_interval(np.asarray(event_id).astype(np.uint64) ^ salt) < fraction


def labelled_mask(event_id: np.ndarray, fraction: float) -> np.ndarray:
    """Return True for the events treated as labelled (about ``fraction`` of them).

    Raises:
        ConfigError: ``fraction`` outside (0, 1).
    """
    return _salted_share(event_id, fraction, LABELLED_SALT, name="labelled")


def calibration_mask(event_id: np.ndarray, fraction: float) -> np.ndarray:
    """Return True for the labelled events set aside to fit the calibration (about ``fraction``).

    Raises:
        ConfigError: ``fraction`` outside (0, 1).
    """
    return _salted_share(event_id, fraction, CALIBRATION_SALT, name="calibration")


@dataclass(frozen=True)
class ClassTask:
    """The classes of a classification task.

    Attributes:
        class_ids: decay-tree class id of each class index, largest class first.
        counts: labelled events of each class.
    """

    class_ids: np.ndarray
    counts: np.ndarray

    @property
    def num_classes(self) -> int:
        """Number of classes N."""
        return len(self.class_ids)

    def to_index(self, y: np.ndarray) -> np.ndarray:
        """Map class ids to class indices; ids outside the task (and unknown ids, -1) give -1."""
        y = np.asarray(y, dtype=np.int64)
        order = np.argsort(self.class_ids)
        sorted_ids = self.class_ids[order]
        position = np.clip(np.searchsorted(sorted_ids, y), 0, len(sorted_ids) - 1)
        found = sorted_ids[position] == y
        return np.where(found & (y >= 0), order[position], -1)


def top_classes(y: np.ndarray, *, top: int) -> ClassTask:
    """Choose the ``top`` most frequent class ids of ``y`` (ties: smaller id first).

    Unknown labels (negative ids) are not counted. Fewer than ``top`` classes is allowed and
    logged; fewer than two is an error because there is nothing to classify.

    Raises:
        ConfigError: ``top`` below 2.
        DataError: fewer than two known classes.
    """
    if top < 2:
        raise ConfigError(f"--top must be at least 2 classes (got {top})")
    y = np.asarray(y, dtype=np.int64)
    known = y[y >= 0]
    ids, counts = np.unique(known, return_counts=True)
    if len(ids) < 2:
        raise DataError(f"Expected labelled events of at least two classes (got {len(ids)} class(es) in {len(known)} events with a known label)")
    order = np.lexsort((ids, -counts))[:top]
    if len(ids) < top:
        logger.warning("--top %d is more than the %d classes with labelled events, so all %d are used", top, len(ids), len(ids))
    return ClassTask(class_ids=ids[order], counts=counts[order])


def labelled_task(event_id: np.ndarray, y: np.ndarray, *, labelled_fraction: float, top: int) -> tuple[np.ndarray, ClassTask, np.ndarray]:
    """Split events into labelled and unlabelled and pick the top classes among the labelled.

    Returns:
        The labelled mask, the task, and each event's class index (-1 outside the task).
    """
    labelled = labelled_mask(event_id, labelled_fraction)
    task = top_classes(y[labelled], top=top)
    return labelled, task, task.to_index(y)
