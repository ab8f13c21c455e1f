"""Tests of the chunk reader on hand-made BESIII files, the HZZ sample and TopoAna truth."""

from __future__ import annotations

import math
import re

import awkward as ak
import numpy as np
import pytest
import uproot

from tests.data.ntuple_writer import MISSING, charged_track, photon, three_events, write_besiii
from pmse_graph.data.conditions import emc_geometry
from pmse_graph.data.reader import ReadStats, iterate_chunks, source_hash
from pmse_graph.data.schema import load_schema
from pmse_graph.errors import ConfigError, DataError
from pmse_graph.physics.helix import impact_on_cylinder


@pytest.fixture(scope="module")
def schema():
    return load_schema("besiii")


def read_all(files, schema, **kwargs):
    stats = ReadStats()
    chunks = list(iterate_chunks(files, schema, stats=stats, **kwargs))
    return chunks, stats


def test_zero_single_and_nan_tracks(tmp_path, schema):
    events = [[], [charged_track()], [charged_track(), photon(emc_energy=math.nan)], [charged_track(), photon()]]
    path = write_besiii(tmp_path / "edge_cases.root", events)

    with pytest.raises(DataError) as error:
        read_all([path], schema)
    message = str(error.value)
    assert str(path) in message
    assert "'emc_energy'" in message
    assert "entry 2" in message
    assert "track 1" in message

    chunks, stats = read_all([path], schema, nonfinite="drop-event")
    assert stats.events_read == 4
    assert stats.dropped_empty == 1
    assert stats.dropped_nonfinite == 1
    assert stats.events_kept == 2
    assert stats.nonfinite_branches == {"emc_energy": 1}
    assert chunks[0].counts.tolist() == [1, 2]
    assert chunks[0].entry.tolist() == [1, 3]


def test_invalid_policy_rejected(besiii_file, schema):
    with pytest.raises(ConfigError, match="non-finite policy"):
        read_all([besiii_file], schema, nonfinite="ignore")


def test_middle_file_with_empty_tree(tmp_path, schema):
    first = write_besiii(tmp_path / "a.root", three_events(), first_event=0)
    empty = write_besiii(tmp_path / "b.root", [])
    last = write_besiii(tmp_path / "c.root", three_events(), first_event=10)
    chunks, stats = read_all([first, empty, last], schema)
    assert stats.files == 3
    assert stats.events_kept == 6
    assert [chunk.sources[0] for chunk in chunks] == [str(first), str(last)]
    assert np.concatenate([chunk.event_id for chunk in chunks]).tolist() == [(1 << 32) + e for e in (0, 1, 2, 10, 11, 12)]


def test_float_and_double_files_agree(tmp_path, schema):
    single = write_besiii(tmp_path / "float.root", three_events(), float_dtype=np.float32)
    double = write_besiii(tmp_path / "double.root", three_events(), float_dtype=np.float64)
    assert uproot.open(double)["evt"]["emc_energy"].typename == "double[]"
    (a,), _ = read_all([single], schema)
    (b,), _ = read_all([double], schema)
    assert a.continuous.dtype == b.continuous.dtype == np.float32
    np.testing.assert_array_equal(a.continuous, b.continuous)
    np.testing.assert_array_equal(a.p4, b.p4)


def test_missing_values_become_flags(besiii_file, schema):
    (chunk,), _ = read_all([besiii_file], schema)
    assert np.all(chunk.continuous < MISSING)
    kinematics, emc, muc = (schema.flag_groups.index(group) for group in ("kinematics", "emc", "muc"))
    is_photon = chunk.categorical[:, 0] == 1
    assert chunk.present[~is_photon, kinematics].all()
    assert not chunk.present[is_photon, kinematics].any()
    assert chunk.present[:, emc].all()
    assert not chunk.present[:, muc].any()
    eop = schema.continuous_names.index("EoP")
    assert chunk.missing[is_photon, eop].all()
    assert (chunk.continuous[is_photon, eop] == 0).all()


def test_categories_include_missing(besiii_file, schema):
    (chunk,), _ = read_all([besiii_file], schema)
    charge_index = chunk.categorical[:, 0]
    assert charge_index[:3].tolist() == [2, 0, 1]
    pid_index = chunk.categorical[:, 1]
    assert set(pid_index[charge_index != 1].tolist()) == {2}
    assert set(pid_index[charge_index == 1].tolist()) == {5}


def test_unknown_category_rejected(tmp_path, schema):
    path = write_besiii(tmp_path / "bad_pid.root", [[charged_track(pid_prob_type=7)]])
    with pytest.raises(DataError, match=r"'pid_prob_type' is 7.0 at entry 0, track 0; allowed values are \[0, 1, 2, 3, 4\]"):
        read_all([path], schema)


def test_neutral_momentum_from_shower(besiii_file, schema):
    (chunk,), _ = read_all([besiii_file], schema)
    shower_photon = chunk.p4[2]
    assert shower_photon[3] == pytest.approx(0.3)
    assert np.linalg.norm(shower_photon[:3]) == pytest.approx(0.3, rel=1e-6)
    direction = np.array([0.0, 80.0, 20.0]) / np.linalg.norm([0.0, 80.0, 20.0])
    np.testing.assert_allclose(shower_photon[:3] / 0.3, direction, rtol=1e-5)
    pion = chunk.p4[0]
    assert pion[3] == pytest.approx(math.sqrt(0.29 + 0.13957039**2), rel=1e-6)


def test_stored_and_computed_conditions(tmp_path, schema):
    # the first track (pt 0.36 GeV/c, helix radius 120 cm) bends by about 23 degrees before the EMC
    geometry = emc_geometry("besiii")
    impact = impact_on_cylinder(vertex=np.array([[0.0, 0.0, 0.5]]), momentum=np.array([[0.3, 0.2, 0.4]]),
                                charge=np.array([1.0]), field_tesla=geometry.field_tesla,
                                radius_cm=geometry.radius_cm, half_length_cm=geometry.half_length_cm)
    events = [[
        charged_track(0.3, 0.2, 0.4),
        charged_track(0.1, 0.1, 0.9, q=-1),                       # |cos theta| 0.988: fails the polar-angle cut
        charged_track(0.4, 0.0, 0.1, vz0=12.0),                   # fails |Vz| < 10 cm
        photon(0.0, 80.0, 20.0),                                   # barrel, isolated: good
        photon(0.0, 80.0, 20.0, energy=0.02),                      # barrel below 25 MeV
        photon(0.0, 30.0, 100.0, energy=0.2),                      # |cos| 0.958: outside the endcap window
        photon(0.0, 50.0, 100.0, energy=0.2),                      # |cos| 0.894: endcap, good
        photon(0.0, 80.0, 20.0, emc_time=20.0),                    # out of time
        photon(94 * 0.3 / 0.5385, 94 * 0.2 / 0.5385, 94 * 0.4 / 0.5385),  # along the first track's momentum: good
        photon(*impact.position[0]),                               # on the first track's EMC impact point
    ], [charged_track(0.3, 0.2, 0.4), photon(94 * 0.3 / 0.5385, 94 * 0.2 / 0.5385, 94 * 0.4 / 0.5385)]]
    path = write_besiii(tmp_path / "conditions.root", events)
    (stored,), _ = read_all([path], schema)
    assert stored.cond.tolist() == [[3, 7, 3, 7], [1, 1, 1, 1]]

    computing = schema.model_copy(update={"conditions": {}})
    (computed,), _ = read_all([path], computing)
    assert computed.cond.tolist() == [[3, 7, 1, 3], [1, 1, 1, 1]]

    # without a detector configuration the isolation falls back to the momentum direction
    by_momentum = computing.model_copy(update={"selection": computing.selection.model_copy(update={"detector": None})})
    (fallback,), _ = read_all([path], by_momentum)
    assert fallback.cond.tolist() == [[3, 7, 1, 3], [1, 1, 1, 0]]


def test_fixed_size_branches(tmp_path):
    path = tmp_path / "fixed.root"
    values = np.arange(12, dtype=np.float64).reshape(4, 3) + 1.0
    branches = {"px": values, "py": values * 0, "pz": values * 0, "mass": np.full((4, 3), 0.5, dtype=np.float32)}
    with uproot.recreate(path) as handle:
        handle.mktree("t", {name: (array.dtype, (3,)) for name, array in branches.items()})
        handle["t"].extend(branches)
    schema_path = tmp_path / "fixed.yaml"
    schema_path.write_text(
        "name: fixed\ntree: t\nmissing_value: null\ncollections: [{name: p}]\ngroups: [{name: kin}]\n"
        "momentum: {px: px, py: py, pz: pz}\n"
        "features:\n"
        "  - {name: px, group: kin, branches: {p: px}}\n"
        "  - {name: py, group: kin, branches: {p: py}}\n"
        "  - {name: pz, group: kin, branches: {p: pz}}\n"
        "  - {name: mass, group: kin, branches: {p: mass}}\n"
    )
    (chunk,), _ = read_all([path], load_schema(schema_path))
    assert chunk.counts.tolist() == [3, 3, 3, 3]
    assert chunk.continuous.dtype == np.float32
    np.testing.assert_array_equal(chunk.continuous[:, 0], values.reshape(-1))
    assert chunk.cond[:, 1].tolist() == [3, 3, 3, 3]


def test_step_size_chunks_and_select(tmp_path, schema):
    path = write_besiii(tmp_path / "many.root", three_events() * 5)
    chunks, stats = read_all([path], schema, step_size=4)
    assert [chunk.num_events for chunk in chunks] == [4, 4, 4, 3]
    whole = chunks[0].concatenate(chunks)
    assert whole.num_events == 15
    picked = whole.select(np.array([14, 1, 1]))
    assert picked.counts.tolist() == [4, 1, 1]
    assert picked.event_id.tolist() == [(1 << 32) + 14, (1 << 32) + 1, (1 << 32) + 1]
    np.testing.assert_array_equal(picked.p4[:4], whole.p4[whole.offsets[14]:whole.offsets[15]])

    sliced = whole.slice(13, 15)
    np.testing.assert_array_equal(sliced.offsets, whole.select(np.array([13, 14])).offsets)
    np.testing.assert_array_equal(sliced.continuous, whole.select(np.array([13, 14])).continuous)
    assert sliced.event_id.tolist() == [(1 << 32) + 13, (1 << 32) + 14]
    assert whole.slice(15, 20).num_events == 0


def test_hzz_collections_join(shared_data):
    path = shared_data / "scikit-hep-testdata" / "uproot-HZZ.root"
    schema = load_schema("hzz")
    (chunk,), stats = read_all([path], schema, step_size=10_000)
    tree = uproot.open(path)["events"]
    counts = sum(tree[name].array(library="np") for name in ("NMuon", "NElectron", "NPhoton", "NJet"))
    assert stats.events_read == 2421
    assert stats.dropped_empty == int((counts == 0).sum())
    np.testing.assert_array_equal(chunk.counts, counts[counts > 0])

    # the first event with a muon: its muons come first, with their measured four-momenta
    muons = tree["Muon_E"].array()
    first = int(np.flatnonzero(ak.to_numpy(ak.num(muons)) > 0)[0])
    kept_index = int(np.searchsorted(np.flatnonzero(counts > 0), first))
    start = chunk.offsets[kept_index]
    assert chunk.p4[start, 3] == pytest.approx(float(muons[first][0]))
    assert chunk.categorical[start, 0] in (0, 2)
    isolation = schema.flag_groups.index("isolation")
    jets = np.asarray(tree["NJet"].array(library="np"))[counts > 0]
    assert int((~chunk.present[:, isolation]).sum()) == int(jets.sum())
    # no event branch: ids come from the file name and the entry
    assert chunk.event_id[0] == (source_hash("uproot-HZZ.root") << 32) | int(np.flatnonzero(counts > 0)[0])
    assert (chunk.y == -1).all()


@pytest.mark.parametrize("name", ["jpsi1.root", "jpsi2.root"])
def test_topoana_truth_counts_match_nmcps(shared_data, tmp_path, name):
    path = shared_data / "topoana" / name
    schema_path = tmp_path / "truth.yaml"
    schema_path.write_text(
        "name: truth\ntree: evt\nmissing_value: null\nevent_number: Evtid\nrun_number: Runid\n"
        "collections: [{name: mc}]\ngroups: [{name: truth, presence_flag: false}]\n"
        "momentum: {px: pdg, py: pdg, pz: pdg}\n"
        "conditions: {charged: Nmcps}\n"
        "features:\n  - {name: pdg, group: truth, branches: {mc: Pid}}\n  - {name: mother, group: truth, branches: {mc: Midx}}\n"
    )
    chunks, stats = read_all([path], load_schema(schema_path), step_size=20_000)
    assert stats.events_read == 50_000
    assert stats.dropped_empty == 0
    counts = np.concatenate([chunk.counts for chunk in chunks])
    nmcps = np.concatenate([chunk.cond[:, 0] for chunk in chunks])
    np.testing.assert_array_equal(counts, nmcps)
    first = chunks[0]
    assert first.continuous[first.offsets[:-1], 0].tolist()[:5] == [443.0] * 5
    assert (first.continuous[first.offsets[:-1], 1] == -1).all()


@pytest.mark.parametrize(("branch", "value", "expected"), [
    ("nCharged", math.nan, "branch 'nCharged' is nan at entry 1"),
    ("nGoodNeutral", -1.0, "branch 'nGoodNeutral' is -1.0 at entry 1"),
    ("topo_tree_id", math.inf, "branch 'topo_tree_id' is inf at entry 1"),
    ("topo_fs_id", 1.5, "branch 'topo_fs_id' is 1.5 at entry 1"),
    ("event", math.nan, "branch 'event' is nan at entry 1"),
])
def test_invalid_per_event_values(tmp_path, schema, branch, value, expected):
    good = {"nCharged": 2.0, "nGoodNeutral": 1.0, "topo_tree_id": 1.0, "topo_fs_id": 0.0, "event": 7.0}[branch]
    column = np.array([good, value, good], dtype=np.float64)
    path = write_besiii(tmp_path / "bad_event_branch.root", three_events(), event_branches={branch: column})
    with pytest.raises(DataError, match=re.escape(expected)) as caught:
        read_all([path], schema)
    assert "bad_event_branch.root" in str(caught.value)

    (chunk,), stats = read_all([path], schema, nonfinite="drop-event")
    assert chunk.entry.tolist() == [0, 2]
    assert stats.dropped_nonfinite == 1
    assert stats.nonfinite_branches == {branch: 1}
    assert "entry 1" in stats.first_invalid[branch]


def test_event_ids_without_event_branch_follow_file_names(tmp_path):
    schema = load_schema("besiii").model_copy(update={"event_number": None, "run_number": None})
    first = write_besiii(tmp_path / "a.root", three_events())
    second = write_besiii(tmp_path / "b.root", three_events()[:2])
    forward = np.concatenate([chunk.event_id for chunk in read_all([first, second], schema)[0]])
    backward = np.concatenate([chunk.event_id for chunk in read_all([second, first], schema)[0]])
    assert sorted(forward.tolist()) == sorted(backward.tolist())
    assert len(set(forward.tolist())) == 5
    (only_first,), _ = read_all([first], schema)
    assert only_first.event_id.tolist() == forward[:3].tolist()
    assert only_first.event_id[1] == (source_hash("a.root") << 32) | 1
    assert source_hash(str(tmp_path / "x" / "a.root")) == source_hash("a.root") != source_hash("b.root")
