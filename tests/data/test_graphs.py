"""Tests of the vectorised graph batch builder and the dense padded form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.nn import global_mean_pool

from tests.data.ntuple_writer import charged_track, photon, three_events, write_besiii
from pmse_graph.data.graphs import build_batch
from pmse_graph.data.pairs import ordered_pairs, ordered_pairs_with_reverse
from pmse_graph.data.padded import to_padded
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.errors import ConfigError
from pmse_graph.physics.kinematics import pair_features


@pytest.fixture(scope="module")
def schema():
    return load_schema("besiii")


@pytest.fixture()
def chunk_and_standardizer(tmp_path, schema):
    path = write_besiii(tmp_path / "graphs.root", three_events())
    (chunk,) = list(iterate_chunks(path, schema))
    return chunk, Standardizer.from_schema(schema).fit([chunk])


def test_ordered_pairs_complete():
    source, target = ordered_pairs(np.array([0, 3, 3, 4, 6]))
    pairs = sorted(zip(source.tolist(), target.tolist()))
    expected = sorted((i, j) for lo, hi in ((0, 3), (4, 6)) for i in range(lo, hi) for j in range(lo, hi) if i != j)
    assert pairs == expected
    assert np.all(np.diff(target) >= 0)


def test_reverse_pair_positions():
    source, target, reverse = ordered_pairs_with_reverse(np.array([0, 3, 3, 4, 9]))
    np.testing.assert_array_equal(source[reverse], target)
    np.testing.assert_array_equal(target[reverse], source)


def test_batch_contract(chunk_and_standardizer, schema):
    chunk, standardizer = chunk_and_standardizer
    batch = build_batch(chunk, standardizer, schema=schema)
    assert batch.num_graphs == 3
    assert batch.x.shape == (8, schema.num_node_features)
    assert batch.x.dtype == torch.float32
    assert batch.x_cat.shape == (8, 2)
    assert batch.x_cat.dtype == torch.long
    assert batch.edge_index.shape == (2, 3 * 2 + 0 + 4 * 3)
    assert batch.edge_attr.shape == (18, schema.num_edge_features)
    assert batch.cond.shape == (3, 4)
    assert batch.cond.dtype == torch.long
    assert batch.y.tolist() == [0, 1, 2]
    assert batch.y_fs.tolist() == [0, 1, 0]
    assert batch.event_id.dtype == torch.int64
    assert batch.ptr.tolist() == [0, 3, 4, 8]
    assert torch.isfinite(batch.x).all()
    assert torch.isfinite(batch.edge_attr).all()
    source, target = batch.edge_index
    assert (source != target).all()
    assert (batch.batch[source] == batch.batch[target]).all()
    for index, count in enumerate([3, 1, 4]):
        example = batch.get_example(index)
        assert example.num_nodes == count
        assert example.edge_index.max().item() < count if count > 1 else example.edge_index.numel() == 0


def test_edge_features_match_kinematics(chunk_and_standardizer, schema):
    chunk, standardizer = chunk_and_standardizer
    batch = build_batch(chunk, standardizer, schema=schema)
    p4 = torch.from_numpy(chunk.p4).double()
    source, target = batch.edge_index
    mass = torch.sqrt((p4[:, 3] ** 2 - (p4[:, :3] ** 2).sum(1)).clamp_min(0))
    expected = pair_features(p4[source, :3], p4[target, :3], mass[source], mass[target])
    torch.testing.assert_close(batch.edge_attr[:, :5].double(), expected, rtol=1e-4, atol=1e-4)

    # the two pions of event 0: log m^2 from the summed four-momenta
    total = p4[0] + p4[1]
    m2 = total[3] ** 2 - (total[:3] ** 2).sum()
    edge = int(((source == 1) & (target == 0)).nonzero()[0])
    assert batch.edge_attr[edge, 0].item() == pytest.approx(torch.log(m2).item(), rel=1e-5)

    # shower pairs: distance and the flag set for every pair here, all particles having showers
    assert (batch.edge_attr[:, 7] == 1).all()
    distance = np.linalg.norm(chunk.shower[1, :3] - chunk.shower[0, :3])
    assert batch.edge_attr[edge, 5].item() == pytest.approx(np.log1p(distance), rel=1e-5)

    # time difference: source minus target, so the reverse edge has the opposite sign
    shower_time = torch.from_numpy(chunk.shower[:, 3])
    torch.testing.assert_close(batch.edge_attr[:, 6], shower_time[source] - shower_time[target])


def test_permuted_particles_give_same_edges(tmp_path, schema):
    event = [charged_track(0.3, 0.2, 0.4), charged_track(-0.2, 0.1, -0.5, q=-1), photon()]
    forward = write_besiii(tmp_path / "forward.root", [event])
    backward = write_besiii(tmp_path / "backward.root", [event[::-1]])
    (a,), (b,) = list(iterate_chunks(forward, schema)), list(iterate_chunks(backward, schema))
    standardizer = Standardizer.from_schema(schema).fit([a])
    batch_a, batch_b = build_batch(a, standardizer, schema=schema), build_batch(b, standardizer, schema=schema)
    key = lambda batch: sorted(tuple(np.round(row, 4)) for row in batch.edge_attr.numpy())
    assert key(batch_a) == key(batch_b)


def test_empty_event_at_end_keeps_pooled_row(tmp_path, schema):
    path = write_besiii(tmp_path / "trailing_empty.root", [[charged_track()], [charged_track(), photon()], []])
    (chunk,) = list(iterate_chunks(path, schema, drop_empty=False))
    assert chunk.counts.tolist() == [1, 2, 0]
    batch = build_batch(chunk, Standardizer.from_schema(schema).fit([chunk]), schema=schema)
    assert batch.num_graphs == 3
    pooled = global_mean_pool(batch.x, batch.batch, size=batch.num_graphs)
    assert pooled.shape == (3, schema.num_node_features)
    assert torch.all(pooled[2] == 0)
    padded = to_padded(batch)
    assert padded.mask.sum(1).tolist() == [1, 2, 0]


def test_collinear_and_zero_momenta_finite(tmp_path, schema):
    event = [charged_track(0.3, 0.0, 0.0), charged_track(0.6, 0.0, 0.0, q=-1), charged_track(0.0, 0.0, 0.0), photon(energy=0.0)]
    path = write_besiii(tmp_path / "collinear.root", [event])
    (chunk,) = list(iterate_chunks(path, schema))
    batch = build_batch(chunk, Standardizer.from_schema(schema).fit([chunk]), schema=schema)
    assert torch.isfinite(batch.edge_attr).all()
    assert torch.isfinite(batch.x).all()


def test_knn_graph(tmp_path, schema):
    rng = np.random.default_rng(0)
    big = [charged_track(*rng.normal(0, 0.5, 3)) for _ in range(12)]
    path = write_besiii(tmp_path / "big.root", [big, [charged_track(), photon()]])
    (chunk,) = list(iterate_chunks(path, schema))
    standardizer = Standardizer.from_schema(schema).fit([chunk])
    batch = build_batch(chunk, standardizer, schema=schema, graph="knn", k=4)
    source, target = batch.edge_index
    assert batch.edge_index.shape[1] == 12 * 4 + 2
    assert torch.bincount(target[:48], minlength=12).tolist() == [4] * 12
    complete = build_batch(chunk, standardizer, schema=schema)
    cos_all = complete.edge_attr[:132, 1].view(12, 11)
    kept_min = batch.edge_attr[:48, 1].view(12, 4).min(1).values
    assert torch.all(kept_min >= cos_all.sort(1, descending=True).values[:, 3] - 1e-6)
    with pytest.raises(ConfigError, match="graph kind"):
        build_batch(chunk, standardizer, graph="radius")


def test_padded_matches_graph(chunk_and_standardizer, schema):
    chunk, standardizer = chunk_and_standardizer
    batch = build_batch(chunk, standardizer, schema=schema)
    padded = to_padded(batch)
    assert padded.x.shape == (3, 4, schema.num_node_features)
    assert padded.pair.shape == (3, 4, 4, schema.num_edge_features)
    assert padded.mask.tolist() == [[True, True, True, False], [True, False, False, False], [True, True, True, True]]
    torch.testing.assert_close(padded.x[padded.mask], batch.x)
    torch.testing.assert_close(padded.x_cat[padded.mask], batch.x_cat)
    torch.testing.assert_close(padded.p4[padded.mask], batch.p4)
    assert torch.all(padded.x[~padded.mask] == 0)
    source, target = batch.edge_index
    local = torch.arange(batch.num_nodes) - batch.ptr[batch.batch]
    for edge in range(batch.edge_index.shape[1]):
        graph = batch.batch[target[edge]]
        torch.testing.assert_close(padded.pair[graph, local[target[edge]], local[source[edge]]], batch.edge_attr[edge])
    assert padded.pair.abs().sum(-1).gt(0).sum().item() == batch.edge_index.shape[1]
    assert torch.equal(padded.cond, batch.cond)
    assert torch.equal(padded.event_id, batch.event_id)
    with pytest.raises(ValueError, match="max_nodes >= 4"):
        to_padded(batch, max_nodes=3)


def test_large_events_get_knn_edges(tmp_path, schema, caplog):
    rng = np.random.default_rng(1)
    big = [charged_track(*rng.normal(0, 0.5, 3)) for _ in range(10)]
    path = write_besiii(tmp_path / "large.root", [big, [charged_track(), photon()], big[:5]])
    (chunk,) = list(iterate_chunks(path, schema))
    standardizer = Standardizer.from_schema(schema).fit([chunk])
    with caplog.at_level("WARNING", logger="pmse_graph.data.graphs"):
        guarded = build_batch(chunk, standardizer, schema=schema, k=3, max_complete_nodes=6)
    assert "1 of 3 events have more than 6 particles" in caplog.text
    # the 10-particle event keeps 3 in-edges per node; the others stay complete
    assert guarded.edge_index.shape[1] == 10 * 3 + 2 + 5 * 4
    knn = build_batch(chunk, standardizer, schema=schema, graph="knn", k=3)
    complete = build_batch(chunk, standardizer, schema=schema, max_complete_nodes=None)
    assert torch.equal(guarded.edge_index[:, :30], knn.edge_index[:, :30])
    assert torch.equal(guarded.edge_index[:, 30:], complete.edge_index[:, 90:])
    assert torch.equal(guarded.edge_attr[30:], complete.edge_attr[90:])
    with pytest.raises(ConfigError, match="max_complete_nodes"):
        build_batch(chunk, standardizer, schema=schema, max_complete_nodes=0)
