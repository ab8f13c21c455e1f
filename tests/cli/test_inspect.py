"""Tests of ``pmse-graph inspect`` through typer's runner."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from pmse_graph.cli.main import app
from tests.data import ntuple_writer


runner = CliRunner()


@pytest.fixture()
def good_file(tmp_path):
    return ntuple_writer.write_besiii(tmp_path / "good.root", ntuple_writer.three_events() + [[]])


def test_inspect_valid_file(good_file):
    result = runner.invoke(app, ["inspect", str(good_file)])
    assert result.exit_code == 0, result.output
    assert "good.root: ok" in result.output
    assert "events kept 3" in result.output
    assert "1 with zero particles" in result.output
    assert "particles per event: min 1, mean 2.67, max 4" in result.output
    assert "top decay-tree classes (id: events): 0: 1, 1: 1, 2: 1" in result.output


def test_inspect_reports_nonfinite_values(tmp_path):
    events = [[ntuple_writer.charged_track()], [ntuple_writer.charged_track(), ntuple_writer.photon(emc_energy=math.nan)]]
    path = ntuple_writer.write_besiii(tmp_path / "nan.root", events)

    # the default policy is the training default: the file is unusable, and the line names entry and track
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert "nan.root: UNUSABLE" in result.output
    assert "feature 'emc_energy' is nan at entry 1, track 1" in result.output

    result = runner.invoke(app, ["inspect", str(path), "--json", "--nonfinite", "drop-event"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["usable"] and summary["events"] == 1
    assert summary["dropped_nonfinite"] == 1
    assert "'emc_energy' has 1 invalid" in summary["problems"][0]
    assert "entry 1, track 1: nan" in summary["problems"][0]


def test_inspect_rejects_unknown_nonfinite_policy(good_file):
    result = runner.invoke(app, ["inspect", str(good_file), "--nonfinite", "ignore"])
    assert result.exit_code == 1
    assert "Invalid non-finite policy 'ignore'" in result.output


@pytest.mark.parametrize("events", [[[], [], []], []], ids=["zero-particle events", "empty tree"])
def test_inspect_file_without_usable_events_exits_nonzero(tmp_path, events):
    path = ntuple_writer.write_besiii(tmp_path / "nothing.root", events)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert "nothing.root: UNUSABLE" in result.output
    assert f"no usable events: {len(events)} entries, {len(events)} dropped with zero particles" in result.output


def test_inspect_nan_condition_branch(tmp_path):
    events = ntuple_writer.three_events()
    path = ntuple_writer.write_besiii(tmp_path / "nancond.root", events,
                                      event_branches={"nCharged": np.array([2.0, math.nan, 2.0], dtype=np.float32)})
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert "branch 'nCharged' is nan at entry 1" in result.output


def test_inspect_unusable_file_exits_nonzero(tmp_path, good_file):
    broken = ntuple_writer.write_besiii(tmp_path / "broken.root", ntuple_writer.three_events(), drop_branches=("emc_x",))
    result = runner.invoke(app, ["inspect", str(good_file), str(broken)])
    assert result.exit_code == 1
    assert "broken.root: UNUSABLE" in result.output
    assert "branch 'emc_x' not found in tree 'evt'" in result.output
    assert "good.root: ok" in result.output


def test_inspect_hzz_schema(shared_data):
    path = shared_data / "scikit-hep-testdata" / "uproot-HZZ.root"
    result = runner.invoke(app, ["inspect", str(path), "--schema", "hzz"])
    assert result.exit_code == 0, result.output
    assert "entries 2421" in result.output


def test_inspect_unknown_schema(good_file):
    result = runner.invoke(app, ["inspect", str(good_file), "--schema", "nope"])
    assert result.exit_code == 1
    assert "Unknown schema 'nope'" in result.output
