"""Tests of the robust streaming standardiser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.data.ntuple_writer import three_events, write_besiii
from pmse_graph.data.chunk import EventChunk, counts_to_offsets
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer, signed_log1p
from pmse_graph.errors import DataError


def synthetic_chunk(values: np.ndarray, missing: np.ndarray) -> EventChunk:
    """A chunk with one particle per event and the given continuous columns."""
    num = len(values)
    zeros = np.zeros(num, dtype=np.int64)
    return EventChunk(
        sources=["memory"], source_index=zeros.astype(np.int32), entry=np.arange(num), event_id=np.arange(num),
        offsets=counts_to_offsets(np.ones(num, dtype=np.int64)), continuous=values.astype(np.float32), missing=missing,
        present=np.ones((num, 0), dtype=bool), categorical=np.zeros((num, 0), dtype=np.int64),
        p4=np.zeros((num, 4), np.float32), shower=np.zeros((num, 4), np.float32), has_shower=zeros.astype(bool),
        cond=np.zeros((num, 4), np.int64), y=zeros - 1, y_fs=zeros - 1,
    )


def test_median_and_spread_from_stream():
    rng = np.random.default_rng(1)
    normal = rng.normal(3.0, 2.0, size=60_000)
    heavy = rng.lognormal(0.0, 1.5, size=60_000)
    values = np.stack([normal, heavy], axis=1)
    missing = np.zeros_like(values, dtype=bool)
    missing[::10, 0] = True
    values[::10, 0] = 0.0
    standardizer = Standardizer(feature_names=["normal", "heavy"], log_features=["heavy"], sample_size=20_000, seed=3)
    chunks = [synthetic_chunk(values[i : i + 7_000], missing[i : i + 7_000]) for i in range(0, 60_000, 7_000)]
    standardizer.fit(chunks)
    assert standardizer.center[0] == pytest.approx(3.0, abs=0.06)
    assert standardizer.scale[0] == pytest.approx(2.0, rel=0.04)
    assert standardizer.center[1] == pytest.approx(np.median(signed_log1p(heavy)), abs=0.03)
    assert standardizer._seen.tolist() == [54_000, 60_000]


def test_transform_clips_and_fills_missing():
    standardizer = Standardizer(feature_names=["a"], clip=3.0)
    standardizer.center, standardizer.scale = np.array([1.0], np.float32), np.array([2.0], np.float32)
    out = standardizer.transform(np.array([[1.0], [5.0], [1e6], [-1e6], [7.0]], np.float32),
                                 np.array([[False], [False], [False], [False], [True]]))
    assert out[:, 0].tolist() == [0.0, 2.0, 3.0, -3.0, 0.0]
    assert out.dtype == np.float32


def test_constant_and_absent_features():
    values = np.ones((100, 2))
    missing = np.zeros((100, 2), dtype=bool)
    missing[:, 1] = True
    standardizer = Standardizer(feature_names=["flat", "never"]).fit([synthetic_chunk(values, missing)])
    assert standardizer.scale.tolist() == [1.0, 1.0]
    assert standardizer.center.tolist() == [1.0, 0.0]


def test_save_load_roundtrip(tmp_path):
    schema = load_schema("besiii")
    path = write_besiii(tmp_path / "fit.root", three_events() * 4)
    standardizer = Standardizer.from_schema(schema).fit(iterate_chunks(path, schema))
    target = tmp_path / "run" / "standardizer.json"
    standardizer.save(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["standardizer.json"]
    content = json.loads(target.read_text())
    assert {f["name"]: f["transform"] for f in content["features"]}["emc_energy"] == "log"
    loaded = Standardizer.load(target)
    loaded.check_schema(schema)
    (chunk,) = list(iterate_chunks(path, schema))
    np.testing.assert_array_equal(loaded.transform(chunk.continuous, chunk.missing),
                                  standardizer.transform(chunk.continuous, chunk.missing))


def test_unfitted_and_mismatched_standardiser(tmp_path):
    schema = load_schema("besiii")
    with pytest.raises(DataError, match="not fitted"):
        Standardizer.from_schema(schema).transform(np.zeros((1, 22)), np.zeros((1, 22), dtype=bool))
    with pytest.raises(DataError, match="Fit a new standardiser"):
        Standardizer(feature_names=["a"]).check_schema(schema)
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="broken.json"):
        Standardizer.load(bad)
