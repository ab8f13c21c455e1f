"""The tiny configuration of ``pmse-graph bench`` end to end, through the typer runner.

One run generates its events, pretrains the three encoders and writes every output (about 30 s
of CPU on an idle 2-core machine). The tests below check what it wrote.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pmse_graph.cli.main import app
from pmse_graph.resources import config_path

runner = CliRunner()
ENCODERS = {"graph", "transformer", "transformer_pair_bias"}
METHODS = {"probe", "knn", "finetune", "scratch"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    results_md = root / "RESULTS.md"
    results_md.write_text("# Results\n\nEarlier section.\n")
    out = root / "out"
    args = ["bench", "--config", str(config_path("bench.yaml")), "--out", str(out), "--tiny", "--results-md", str(results_md)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, results_md, result.output


def test_every_encoder_and_method_scored(tiny_run):
    out, _, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    assert set(results["encoders"]) == ENCODERS
    for name, result in results["encoders"].items():
        assert set(result["methods"]) == METHODS, name
        for method, scores in result["methods"].items():
            assert 0.0 <= scores["accuracy"] <= 1.0, (name, method)
            assert 0.0 <= scores["macro_f1"] <= 1.0, (name, method)
        assert result["pretrain"]["epochs"] == results["size"]["epochs"]
        assert len(result["knn_by_epoch"]) == results["size"]["epochs"]


def test_same_test_events_for_every_encoder(tiny_run):
    out, _, _ = tiny_run
    rows = pd.read_csv(out / "operating_points.csv")
    supports = rows.groupby(["encoder", "class_id"])["support"].first().unstack(0)
    assert supports.notna().all().all()
    assert (supports.nunique(axis=1) == 1).all()  # same class supports, so the same test events


def test_clustering_and_compute_recorded(tiny_run):
    out, _, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    for name, result in results["encoders"].items():
        assert set(result["clustering"]) == {str(k) for k in results["size"]["k_values"]}, name
        for scores in result["clustering"].values():
            assert 0.0 <= scores["nmi"] <= 1.0
            assert 0.0 <= scores["purity"] <= 1.0
        speed = result["compute"]
        assert speed["parameters"] > 0
        assert speed["training_flops_per_event"] > speed["inference_flops_per_event"] > 0
        assert speed["training_events_per_s"] > 0
        assert speed["matmul_peak_flops"] > 0
        assert np.isfinite(speed["peak_share"])
        assert speed["peak_share"] > 0
        assert speed["peak_memory_mb"] > 0


def test_parameters_matched(tiny_run):
    out, _, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    counts = {name: r["compute"]["parameters"] for name, r in results["encoders"].items()}
    for name in ("transformer", "transformer_pair_bias"):
        assert abs(counts[name] - counts["graph"]) / counts["graph"] < 0.1, counts


def test_confusions_listed_with_class_strings(tiny_run):
    out, _, _ = tiny_run
    confusions = pd.read_csv(out / "confusions.csv")
    assert set(confusions["encoder"]) == ENCODERS
    assert set(confusions["kind"]) <= {"shared final state", "one pi0"}
    assert len(confusions) > 0
    assert confusions["tree_a"].str.startswith("J/psi -->").all()
    shares = confusions["share"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_selection_scored_on_test_events(tiny_run):
    out, _, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    selection = results["selection"]
    assert 0 < selection["events"] < results["size"]["eval_events"]
    assert set(selection["working_point"]) == {"pi+ rho-", "pi- rho+", "pi0 rho0", "pi+ pi- pi0"}
    assert len(selection["scan"]) == 21
    rho_pi = pd.read_csv(out / "rho_pi.csv")
    assert "selection" in set(rho_pi["source"])


def test_plots_and_tables_written(tiny_run):
    out, _, _ = tiny_run
    for name in ("summary.csv", "encoders.csv", "rho_pi.csv", "confusions.csv", "operating_points.csv",
                 "knn_accuracy_by_epoch.png", "clustering_time_by_k.png", "rho_pi_precision_recall.png", "RESULTS_section.md", "same_wall_clock.csv"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name


def test_markdown_appended_with_provenance(tiny_run):
    out, results_md, output = tiny_run
    text = results_md.read_text()
    assert text.startswith("# Results\n\nEarlier section.\n")
    section = text.split("Earlier section.\n", 1)[1]
    assert section == (out / "RESULTS_section.md").read_text()
    assert "## Encoder benchmark (tiny size" in section
    assert "- machine: " in section
    assert "cores" in section
    assert "- commit: " in section
    assert "--tiny" in section
    assert "The graph encoder" in section
    assert "The graph encoder" in output
    assert "`plots/bench_tiny_x1_knn_accuracy_by_epoch.png`" in section
    for name in ("knn_accuracy_by_epoch.png", "clustering_time_by_k.png", "rho_pi_precision_recall.png"):
        assert (results_md.parent / "plots" / f"bench_tiny_x1_{name}").read_bytes() == (out / name).read_bytes()


def test_rerun_without_overwrite_raises(tiny_run):
    out, results_md, _ = tiny_run
    result = runner.invoke(app, ["bench", "--config", str(config_path("bench.yaml")), "--out", str(out), "--tiny", "--no-record"])
    assert result.exit_code == 1
    assert "--overwrite" in result.output
