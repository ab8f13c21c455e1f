"""Tests of one selection run over generated files: outputs, their agreement and the scan."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pmse_graph.selection.run import SCAN_POINTS, run_selection
from pmse_graph.selection.selection import CLASSES, NOT_SELECTED


@pytest.fixture(scope="module")
def report(rho_pi_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("selection")
    return run_selection([str(path) for path in rho_pi_sample.paths], out_dir=out, tightness=0.5, scan=True, progress=False)


def test_outputs_written(report) -> None:
    assert {"selection", "cutflow", "metrics", "config", "plot"} <= set(report.paths)
    for path in report.paths.values():
        assert path.is_file(), path


def test_parquet_has_one_row_per_event(report) -> None:
    table = pd.read_parquet(report.paths["selection"])

    assert len(table) == 4000
    assert list(table.columns) == ["run", "event_id", "predicted", "reason", "chi2_4c", "chi2_5c", "m_pipi", "m_plus", "m_minus", "truth"]
    assert table["event_id"].is_unique
    assert set(table["predicted"]) <= set(CLASSES) | {NOT_SELECTED}
    assert (table.loc[table["predicted"] == NOT_SELECTED, "reason"] != "").all()


def test_cutflow_matches_parquet(report) -> None:
    table = pd.read_parquet(report.paths["selection"])
    flow = pd.read_csv(report.paths["cutflow"])

    assert flow["remaining"].iloc[-1] == (table["predicted"] != NOT_SELECTED).sum()
    assert flow["failed"].sum() + flow["remaining"].iloc[-1] == len(table)


def test_metrics_json(report) -> None:
    metrics = json.loads(report.paths["metrics"].read_text())

    assert metrics["num_events"] == 4000
    assert sum(metrics["class_fractions"].values()) == pytest.approx(1.0)
    assert len(metrics["scan"]) == SCAN_POINTS
    assert set(metrics["recall_at_99_precision"]) == set(CLASSES)
    working = metrics["working_point"]["classes"]
    table = pd.read_parquet(report.paths["selection"])
    for name in CLASSES:
        correct = ((table["predicted"] == name) & (table["truth"] == name)).sum()
        assert working[name]["correct"] == correct
        assert working[name]["recall"] == pytest.approx(correct / (table["truth"] == name).sum())
    # the scan's selected count falls as the cuts tighten
    selected = np.array([point["selected"] for point in metrics["scan"]])
    assert (np.diff(selected) <= 0).all()


def test_without_topology_truth_unknown(rho_pi_sample, tmp_path) -> None:
    source = rho_pi_sample.paths[0]
    copy = tmp_path / "data" / source.name
    copy.parent.mkdir()
    copy.write_bytes(source.read_bytes())
    result = run_selection([str(copy)], out_dir=tmp_path / "out", progress=False)

    assert (result.frame["truth"] == "unknown").all()
    assert "classes" not in result.metrics["working_point"]
    assert "plot" not in result.paths
