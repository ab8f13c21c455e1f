"""Tests of the benchmark record: the comparison at the same pretraining wall-clock budget."""

from __future__ import annotations

import numpy as np

from pmse_graph.benchmark.record import wall_clock_table


def encoder(seconds: list[float], macro_f1: list[float]) -> dict:
    return {"knn_by_epoch": [{"epoch": i + 1, "pretrain_seconds": s, "accuracy": f + 0.3, "macro_f1": f} for i, (s, f) in enumerate(zip(seconds, macro_f1))]}


def test_wall_clock_budget_is_fastest_total():
    results = {"encoders": {
        "graph": encoder([10.0, 20.0, 30.0], [0.1, 0.2, 0.3]),
        "transformer": encoder([12.0, 24.0, 36.0], [0.15, 0.25, 0.35]),
    }}
    table = wall_clock_table(results).set_index("encoder")
    assert table["budget_seconds"].tolist() == [30.0, 30.0]
    assert table.loc["graph", "epoch"] == 3
    assert table.loc["transformer", "epoch"] == 2
    assert table.loc["transformer", "knn_macro_f1"] == 0.25
    assert table.loc["transformer", "pretrain_seconds"] == 24.0


def test_wall_clock_slow_first_epoch_scores_nan():
    results = {"encoders": {"graph": encoder([5.0], [0.2]), "transformer": encoder([9.0], [0.3])}}
    table = wall_clock_table(results).set_index("encoder")
    assert table.loc["transformer", "epoch"] == 0
    assert np.isnan(table.loc["transformer", "knn_macro_f1"])


def test_wall_clock_without_times_is_empty():
    results = {"encoders": {"graph": {"knn_by_epoch": [{"epoch": 1, "accuracy": 0.5, "macro_f1": 0.2}]}}}
    assert wall_clock_table(results).empty
