"""Tests of the streaming dataset: splits, seeded order, shuffling and sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.data.ntuple_writer import charged_track, photon, write_besiii
from pmse_graph.data.dataset import DataConfig, EventDataset, hash_unit_interval, make_loader, split_mask
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.errors import ConfigError


@pytest.fixture(scope="module")
def schema():
    return load_schema("besiii")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(7)
    paths = []
    for index in range(2):
        events = [[charged_track(*rng.normal(0, 0.4, 3)) for _ in range(1 + n % 4)] + [photon()] * (n % 2)
                  for n in range(150)]
        paths.append(write_besiii(folder / f"part{index}.root", events, first_event=1000 * index))
    return paths


@pytest.fixture(scope="module")
def standardizer(files, schema):
    return Standardizer.from_schema(schema).fit(iterate_chunks(files, schema))


def event_ids(batches) -> list[int]:
    return [int(e) for batch in batches for e in batch.event_id]


def test_split_hash_is_stable_and_disjoint():
    ids = np.arange(20_000, dtype=np.int64)
    masks = [split_mask(ids, split, (0.8, 0.1, 0.1)) for split in ("train", "val", "test")]
    assert np.array_equal(masks[0] | masks[1] | masks[2], np.ones(len(ids), dtype=bool))
    assert not (masks[0] & masks[1]).any()
    assert not (masks[1] & masks[2]).any()
    assert masks[0].mean() == pytest.approx(0.8, abs=0.01)
    assert hash_unit_interval(np.array([12345]))[0] == hash_unit_interval(np.array([12345]))[0]
    with pytest.raises(ConfigError, match="sum"):
        split_mask(ids, "train", (0.5, 0.1, 0.1))
    with pytest.raises(ConfigError, match="Invalid split"):
        split_mask(ids, "holdout", (0.8, 0.1, 0.1))


def test_splits_cover_every_event_once(files, schema, standardizer):
    seen = {split: event_ids(EventDataset(files, schema, standardizer, split=split, batch_size=32, step_size=64))
            for split in ("train", "val", "test")}
    combined = seen["train"] + seen["val"] + seen["test"]
    assert len(combined) == len(set(combined)) == 300
    assert len(seen["val"]) > 0


def test_seeded_order_repeats_and_epoch_changes_it(files, schema, standardizer):
    def order(seed, epoch):
        dataset = EventDataset(files, schema, standardizer, split="all", batch_size=16, step_size=50,
                               shuffle_buffer=60, seed=seed)
        dataset.set_epoch(epoch)
        return event_ids(dataset)

    first = order(seed=1, epoch=0)
    assert first == order(seed=1, epoch=0)
    assert first != order(seed=1, epoch=1)
    assert first != order(seed=2, epoch=0)
    assert sorted(first) == sorted(order(seed=1, epoch=1))
    assert first != sorted(first)


def test_batches_have_batch_size(files, schema, standardizer):
    dataset = EventDataset(files, schema, standardizer, split="all", batch_size=40, shuffle_buffer=0, step_size=64)
    sizes = [batch.num_graphs for batch in dataset]
    assert sizes == [40] * 7 + [20]
    assert event_ids(dataset) == [(1 << 32) + n for n in range(150)] + [(1 << 32) + 1000 + n for n in range(150)]
    dropping = EventDataset(files, schema, standardizer, split="all", batch_size=40, shuffle_buffer=0, drop_last=True)
    assert [batch.num_graphs for batch in dropping] == [40, 40, 40, 40, 40, 40, 40]


def test_workers_shard_without_overlap(files, schema, standardizer):
    config = DataConfig(files=[str(f) for f in files], batch_size=25, step_size=50, shuffle_buffer=40, seed=3)
    dataset = EventDataset.from_config(config, schema, standardizer, split="all")
    loaded = list(make_loader(dataset, num_workers=2))
    ids = event_ids(loaded)
    assert len(ids) == len(set(ids)) == 300
    assert all(batch.x.dtype == torch.float32 for batch in loaded)
    again = event_ids(make_loader(dataset, num_workers=2))
    assert ids == again


def test_rank_sharding(files, schema, standardizer, monkeypatch):
    import pmse_graph.data.dataset as module

    dataset = EventDataset(files, schema, standardizer, split="all", batch_size=25, step_size=50, seed=5)
    per_rank = []
    for rank in range(3):
        monkeypatch.setattr(module, "shard_info", lambda rank=rank: (rank, 3))
        per_rank.append(set(event_ids(dataset)))
    monkeypatch.undo()
    assert sum(len(ids) for ids in per_rank) == 300
    assert set.union(*per_rank) == set(event_ids(EventDataset(files, schema, standardizer, split="all")))


def test_one_file_shards_by_events(files, schema, standardizer, monkeypatch):
    import pmse_graph.data.dataset as module

    # 1 file of 150 events, 4 ranks x 2 workers = 8 shards, read units larger than the file
    dataset = EventDataset(files[:1], schema, standardizer, split="all", batch_size=7, step_size=1000, seed=2)
    shards = [dataset.shard_ranges(shard=shard, num_shards=8) for shard in range(8)]
    sizes = [sum(stop - start for _, start, stop in units) for units in shards]
    assert sizes == [18, 19, 19, 19, 18, 19, 19, 19]
    per_shard = []
    for rank in range(4):
        for worker in range(2):
            monkeypatch.setattr(module, "shard_info", lambda rank=rank, worker=worker: (rank * 2 + worker, 8))
            per_shard.append(event_ids(dataset))
    monkeypatch.undo()
    assert all(per_shard), [len(ids) for ids in per_shard]
    union = [event for ids in per_shard for event in ids]
    assert len(union) == len(set(union)) == 150
    assert set(union) == set(event_ids(EventDataset(files[:1], schema, standardizer, split="all")))


def test_shard_ranges_cut_units_and_reject_bad_shards(files, schema, standardizer):
    dataset = EventDataset(files, schema, standardizer, split="all", step_size=40, shuffle_buffer=0)
    units = dataset.shard_ranges(shard=1, num_shards=2)
    # entries 150-299 of the two files: the whole second file, in units of at most 40
    assert units == [(1, 0, 40), (1, 40, 80), (1, 80, 120), (1, 120, 150)]
    with pytest.raises(ConfigError, match="shard must be"):
        dataset.shard_ranges(shard=2, num_shards=2)
