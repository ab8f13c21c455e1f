"""Tests of class-balanced batching over a chunk stream."""

from __future__ import annotations

import numpy as np
import pytest

from pmse_graph.data.chunk import EventChunk, counts_to_offsets
from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.sampler import ClassBalancedBatcher


def make_chunk(labels: np.ndarray, *, first_id: int = 0) -> EventChunk:
    """A chunk with one particle per event whose feature is the event id."""
    num = len(labels)
    ids = np.arange(first_id, first_id + num, dtype=np.int64)
    return EventChunk(
        sources=["memory"],
        source_index=np.zeros(num, dtype=np.int32),
        entry=ids.copy(),
        event_id=ids,
        offsets=counts_to_offsets(np.ones(num, dtype=np.int64)),
        continuous=ids[:, None].astype(np.float32),
        missing=np.zeros((num, 1), dtype=bool),
        present=np.ones((num, 1), dtype=bool),
        categorical=np.zeros((num, 1), dtype=np.int64),
        p4=np.zeros((num, 4), dtype=np.float32),
        shower=np.zeros((num, 4), dtype=np.float32),
        has_shower=np.zeros(num, dtype=bool),
        cond=np.zeros((num, 4), dtype=np.int64),
        y=np.asarray(labels, dtype=np.int64),
        y_fs=np.zeros(num, dtype=np.int64),
    )


def stream(num_chunks: int, size: int, *, seed: int = 0):
    rng = np.random.default_rng(seed)
    for index in range(num_chunks):
        # a steeply falling class frequency, plus some unlabelled events
        labels = np.minimum(rng.geometric(0.3, size=size) - 1, 9)
        labels[rng.random(size) < 0.05] = -1
        yield make_chunk(labels, first_id=index * size)


def test_batches_are_balanced_and_disjoint():
    batcher = ClassBalancedBatcher(classes_per_batch=3, events_per_class=4, seed=1)
    seen: list[int] = []
    batches = list(batcher.batches(stream(5, 200)))
    assert len(batches) > 10
    for batch in batches:
        classes, counts = np.unique(batch.y, return_counts=True)
        assert len(classes) == 3
        assert counts.tolist() == [4, 4, 4]
        assert (batch.y >= 0).all()
        # the event's own feature travels with it
        assert np.array_equal(batch.continuous[:, 0].astype(np.int64), batch.event_id)
        seen.extend(batch.event_id.tolist())
    assert len(seen) == len(set(seen))
    stats = batcher.stats
    assert stats.events_read == 1000
    assert stats.events_batched == len(seen)
    assert stats.events_batched + stats.skipped_unlabelled + stats.evicted_over_cap + stats.left_at_end == 1000


def test_rare_classes_are_oversampled():
    batcher = ClassBalancedBatcher(classes_per_batch=4, events_per_class=2, seed=0)
    labels = np.concatenate([batch.y for batch in batcher.batches(stream(10, 300))])
    share_of_rare = np.isin(labels, [3, 4, 5]).mean()
    assert share_of_rare > 0.3  # about 0.2 in the stream itself


def test_per_class_cap_bounds_the_buffer():
    batcher = ClassBalancedBatcher(classes_per_batch=2, events_per_class=2, max_per_class=5, seed=0)
    only_one_class = (make_chunk(np.zeros(50, dtype=np.int64), first_id=50 * index) for index in range(4))
    assert list(batcher.batches(only_one_class)) == []
    assert batcher.stats.evicted_over_cap == 195
    assert batcher.stats.left_at_end == 5


def test_same_seed_same_batches():
    first = [batch.event_id for batch in ClassBalancedBatcher(classes_per_batch=3, events_per_class=2, seed=5).batches(stream(3, 100))]
    second = [batch.event_id for batch in ClassBalancedBatcher(classes_per_batch=3, events_per_class=2, seed=5).batches(stream(3, 100))]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize(
    "settings",
    [{"classes_per_batch": 1, "events_per_class": 2}, {"classes_per_batch": 2, "events_per_class": 1}, {"classes_per_batch": 2, "events_per_class": 4, "max_per_class": 3}],
)
def test_rejects_bad_settings(settings):
    with pytest.raises(ConfigError):
        ClassBalancedBatcher(**settings)
