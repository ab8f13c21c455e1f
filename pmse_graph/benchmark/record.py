"""Write the benchmark's results: JSON, CSV tables, PNG plots, the verdict and the markdown summary.

:func:`write_results` turns the output of :func:`pmse_graph.benchmark.suite.run_benchmark` into
files in the output folder and, when asked, appends a dated section to ``benchmarks/RESULTS.md``
with the machine, the git commit and the command. Every number in that section comes from the
results; the verdict sentences are computed, not typed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pmse_graph.config import atomic_write_text  # noqa: E402
from pmse_graph.benchmark.provenance import git_commit, machine_description  # noqa: E402
from pmse_graph.downstream import class_metrics  # noqa: E402
from pmse_graph.atomic import atomic_write_frame  # noqa: E402

MATCH_TOLERANCE = 0.03
"""Relative macro-F1 or NMI shortfall still called a match: the graph encoder matches at 97% of the transformer's score.

NOTE: a chosen value, not a measured run-to-run spread; runs with several seeds would measure it.
"""


def _matches(graph: float, transformer: float) -> str:
    return "matches" if graph >= (1.0 - MATCH_TOLERANCE) * transformer else "does not match"


def summary_table(results: dict) -> pd.DataFrame:
    """Tabulate per encoder and method the accuracy, macro-F1 and mean recall at 99% precision."""
    rows = []
    for name, result in results["encoders"].items():
        for method, scores in result["methods"].items():
            points = result["tables"][method]["points"]
            rows.append({"encoder": name, "method": method, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                         "mean_recall_at_99_precision": float(points["recall_at_precision"].mean())})
    return pd.DataFrame(rows)


def encoder_table(results: dict) -> pd.DataFrame:
    """Tabulate per encoder the clustering quality, size, speed, FLOPs, memory and pretraining time."""
    rows = []
    for name, result in results["encoders"].items():
        speed = result["compute"]
        row = {"encoder": name, "parameters": speed["parameters"]}
        for k, cluster in sorted(result["clustering"].items()):
            row.update({f"nmi_k{k}": cluster["nmi"], f"ari_k{k}": cluster["ari"], f"purity_k{k}": cluster["purity"]})
        row.update({
            "train_events_per_s": speed["training_events_per_s"],
            "infer_events_per_s": speed["inference_events_per_s"],
            "train_flops_per_event": speed["training_flops_per_event"],
            "matmul_peak_gflops": speed["matmul_peak_flops"] / 1e9,
            "matmul_peak_share": speed["peak_share"],
            "train_step_memory_mb": speed["peak_memory_mb"],
            "pretrain_seconds": result["pretrain"]["seconds"],
        })
        if result.get("backends"):
            backends = result["backends"]
            row.update({"eager_events_per_s": backends["eager_training_events_per_s"], "compiled_events_per_s": backends["compiled_training_events_per_s"],
                        "torch_scatter": backends["torch_scatter_installed"]})
        rows.append(row)
    return pd.DataFrame(rows)


def wall_clock_table(results: dict) -> pd.DataFrame:
    """Tabulate each encoder's kNN scores at the same pretraining wall-clock budget.

    The budget is the shortest total pretraining time among the encoders. Each encoder is
    scored at its last epoch that ended within the budget; one whose first epoch already took
    longer gets no score (NaN) there.
    """
    totals = [result["knn_by_epoch"][-1].get("pretrain_seconds", np.nan) for result in results["encoders"].values() if result["knn_by_epoch"]]
    if not totals or not np.isfinite(totals).all():
        return pd.DataFrame(columns=["encoder", "budget_seconds", "epoch", "pretrain_seconds", "knn_accuracy", "knn_macro_f1"])
    budget = min(totals)
    rows = []
    for name, result in results["encoders"].items():
        within = [row for row in result["knn_by_epoch"] if row["pretrain_seconds"] <= budget]
        last = within[-1] if within else {"epoch": 0, "pretrain_seconds": np.nan, "accuracy": np.nan, "macro_f1": np.nan}
        rows.append({"encoder": name, "budget_seconds": budget, "epoch": last["epoch"], "pretrain_seconds": last["pretrain_seconds"],
                     "knn_accuracy": last["accuracy"], "knn_macro_f1": last["macro_f1"]})
    return pd.DataFrame(rows)


def rho_pi_table(results: dict) -> pd.DataFrame:
    """Tabulate precision, recall, F1 and recall at 99% precision of the rho pi classes for every method and the selection."""
    classes = results["rho_pi_classes"]
    rows = []
    for name, result in results["encoders"].items():
        for method, tables in result["tables"].items():
            per_class = tables["per_class"].set_index("class_id")
            points = tables["points"].set_index("class_id")
            for label, class_id in classes.items():
                if class_id not in per_class.index:
                    continue
                entry = per_class.loc[class_id]
                rows.append({"source": f"{name}/{method}", "class": label, "precision": entry["precision"], "recall": entry["recall"],
                             "f1": entry["f1"], "support": int(entry["support"]), "recall_at_99_precision": points.loc[class_id, "recall_at_precision"]})
    selection = results["selection"]
    for label, scores in selection["working_point"].items():
        rows.append({"source": "selection", "class": label, "precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                     "support": scores["true"], "recall_at_99_precision": selection["recall_at_99_precision"][label]["recall"]})
    return pd.DataFrame(rows)


def verdict(results: dict, summary: pd.DataFrame) -> list[str]:
    """State whether the graph encoder matches the transformer baseline, from the measured numbers."""
    encoders = results["encoders"]
    if "graph" not in encoders or "transformer" not in encoders:
        return ["No verdict: the run did not include both the graph encoder and the transformer."]
    lines = []
    scores = summary.set_index(["encoder", "method"])
    for method in ("probe", "knn", "finetune"):
        graph, transformer = scores.loc[("graph", method), "macro_f1"], scores.loc[("transformer", method), "macro_f1"]
        lines.append(
            f"The graph encoder {_matches(graph, transformer)} the transformer in {method} macro-F1 "
            f"({graph:.3f} against {transformer:.3f}; a match is within {100 * MATCH_TOLERANCE:.0f}%)."
        )
    for k in encoders["graph"]["clustering"]:
        graph, transformer = encoders["graph"]["clustering"][k]["nmi"], encoders["transformer"]["clustering"].get(k, {}).get("nmi")
        if transformer is None:
            continue
        lines.append(f"The graph encoder {_matches(graph, transformer)} the transformer in clustering NMI at k = {k} ({graph:.3f} against {transformer:.3f}).")
    clock = wall_clock_table(results).set_index("encoder")
    if {"graph", "transformer"} <= set(clock.index) and np.isfinite(clock.loc[["graph", "transformer"], "knn_macro_f1"]).all():
        graph, transformer = clock.loc["graph"], clock.loc["transformer"]
        lines.append(
            f"Within the same pretraining time ({graph['budget_seconds']:.0f} s) the graph encoder "
            f"{_matches(graph['knn_macro_f1'], transformer['knn_macro_f1'])} the transformer in kNN macro-F1 "
            f"({graph['knn_macro_f1']:.3f} after {int(graph['epoch'])} epochs and {graph['pretrain_seconds']:.0f} s, "
            f"against {transformer['knn_macro_f1']:.3f} after {int(transformer['epoch'])} epochs and {transformer['pretrain_seconds']:.0f} s)."
        )
    for name in encoders:
        if (name, "finetune") in scores.index and (name, "probe") in scores.index:
            tuned, probe_score = scores.loc[(name, "finetune"), "macro_f1"], scores.loc[(name, "probe"), "macro_f1"]
            if tuned < probe_score:
                lines.append(f"Fine-tuning the {name} encoder scores below its linear probe in macro-F1 ({tuned:.3f} against {probe_score:.3f}).")
    confusions = results["confusions"]
    probe = confusions[confusions["method"] == "probe"] if "method" in confusions else confusions.iloc[0:0]
    for kind, part in probe.groupby("kind"):
        means = part.groupby("encoder")["share"].mean()
        if "graph" in means and "transformer" in means and np.isfinite([means["graph"], means["transformer"]]).all():
            does = "lowers" if means["graph"] < means["transformer"] else "does not lower"
            lines.append(f"The graph encoder {does} the '{kind}' confusions (probe, mean share {means['graph']:.3f} against {means['transformer']:.3f}).")
    return lines


def markdown_table(frame: pd.DataFrame, *, digits: int = 3) -> str:
    """Format ``frame`` as a GitHub markdown table, floats with ``digits`` significant digits."""
    def cell(value) -> str:
        if isinstance(value, (float, np.floating)):
            return "n/a" if not np.isfinite(value) else f"{value:.{digits}g}"
        return "n/a" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _plot_knn_by_epoch(results: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, result in results["encoders"].items():
        rows = result["knn_by_epoch"]
        axis.plot([row["epoch"] for row in rows], [row["accuracy"] for row in rows], marker="o", label=name)
    axis.set(xlabel="pretraining epoch", ylabel="kNN accuracy (test events)", title="Accuracy against epochs")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_cluster_time(results: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, result in results["encoders"].items():
        ks = sorted(result["clustering"])
        axis.plot(ks, [result["clustering"][k]["seconds"] for k in ks], marker="o", label=name)
    axis.set(xlabel="k", ylabel="k-means + scoring seconds", xscale="log", title=f"Clustering time against k ({results['size']['eval_events']} events)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_rho_pi_curves(results: dict, path: Path) -> None:
    classes = results["rho_pi_classes"]
    if not classes:
        return
    figure, axes = plt.subplots(1, len(classes), figsize=(4 * len(classes), 4), squeeze=False)
    task_ids = np.asarray(results["classes"])
    for axis, (label, class_id) in zip(axes[0], classes.items()):
        for name, result in results["encoders"].items():
            probe = result["tables"]["probe"]
            matches = np.flatnonzero(task_ids == class_id)
            if len(matches):
                curves = class_metrics.precision_recall_points(probe["probabilities"], probe["truth"], [int(matches[0])])
                precision, recall = curves[int(matches[0])]
                axis.plot(recall, precision, label=f"{name} (probe)")
        scan = results["selection"]["scan"]
        points = [(p["classes"][label]["recall"], p["classes"][label]["precision"]) for p in scan
                  if p["classes"][label]["precision"] is not None and p["classes"][label]["recall"] is not None]
        if points:
            axis.plot(*zip(*points), marker="s", linestyle="--", color="black", label="selection scan")
        axis.set(title=label, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        if class_id not in task_ids:
            axis.text(0.5, 0.5, "not among the top classes", ha="center", va="center", transform=axis.transAxes)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _markdown(results: dict, summary: pd.DataFrame, rho_pi: pd.DataFrame, confusions: pd.DataFrame, lines: list[str], *, command: str) -> str:
    machine = machine_description()
    size = results["size"]
    memory_method = next(iter(results["encoders"].values()))["compute"]["peak_memory_method"]
    probe_rows = confusions[confusions["method"] == "probe"] if "method" in confusions else confusions
    pivot = probe_rows.pivot_table(index=["kind", "tree_a", "tree_b"], columns="encoder", values="share").reset_index() if len(probe_rows) else probe_rows
    text = [
        f"\n## Encoder benchmark ({'tiny' if results['tiny'] else 'default'} size, scale {results['scale']}), "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n",
        f"- machine: {machine['cores']} cores, {machine['cpu']}, GPU: {machine['gpu']}",
        f"- commit: {git_commit()}",
        f"- command: `{command}`",
        f"- events: {size['pretrain_events']} pretraining, {size['eval_events']} evaluation; {size['epochs']} epochs for every encoder; "
        f"top {len(results['classes'])} classes; total {results['seconds']:.0f} s",
        "",
        *[f"- {line}" for line in lines],
        "",
        "Classification of the test events (top classes; probe, kNN and fine-tuning after pretraining, scratch without it):",
        "",
        markdown_table(summary),
        "",
        "Clustering (k-means on the test and labelled events), size, speed and memory per encoder "
        f"(training step on {size['timing_batch']} events, median of {size['timing_repeats']}; memory: {memory_method}):",
        "",
        markdown_table(encoder_table(results)),
        "",
        "kNN classifier at the same pretraining wall-clock budget (the shortest total among the encoders; each encoder at its last epoch within it):",
        "",
        markdown_table(wall_clock_table(results)),
        "",
        "rho pi channels and non-resonant pi+ pi- pi0 (test events of the top classes; selection at its working point):",
        "",
        markdown_table(rho_pi),
        "",
        "Confusions, share of class A's test events predicted as class B (linear probe):",
        "",
        markdown_table(pivot) if len(pivot) else "(no class pairs of either kind among the top classes)",
        "",
    ]
    return "\n".join(text) + "\n"


def write_results(results: dict, *, out: Path, command: str, results_md: Path | None) -> dict:
    """Write results.json, the CSV tables and the plots into ``out``; append the summary to ``results_md``.

    Returns:
        ``{"verdict": text, "markdown": text}``.
    """
    out = Path(out)
    summary = summary_table(results)
    rho_pi = rho_pi_table(results)
    confusions = results["confusions"]
    lines = verdict(results, summary)

    atomic_write_frame(summary, out / "summary.csv")
    atomic_write_frame(encoder_table(results), out / "encoders.csv")
    atomic_write_frame(rho_pi, out / "rho_pi.csv")
    atomic_write_frame(wall_clock_table(results), out / "same_wall_clock.csv")
    atomic_write_frame(confusions, out / "confusions.csv")
    points = pd.concat([tables["points"].assign(encoder=name) for name, r in results["encoders"].items() for tables in r["tables"].values()], ignore_index=True)
    atomic_write_frame(points, out / "operating_points.csv")
    plain = {key: value for key, value in results.items() if key not in ("encoders", "confusions")}
    plain["encoders"] = {name: {key: value for key, value in r.items() if key != "tables"} for name, r in results["encoders"].items()}
    plain.update(machine=machine_description(), commit=git_commit(), command=command, verdict=lines)
    atomic_write_text(out / "results.json", json.dumps(plain, indent=2, default=_json_value) + "\n")
    plots = {"knn_accuracy_by_epoch.png": _plot_knn_by_epoch, "clustering_time_by_k.png": _plot_cluster_time,
             "rho_pi_precision_recall.png": _plot_rho_pi_curves}
    for name, plot in plots.items():
        plot(results, out / name)

    markdown = _markdown(results, summary, rho_pi, confusions, lines, command=command)
    if results_md is not None:
        # the plots go beside the markdown file, named by size, so the record links to them
        plot_dir = Path(results_md).parent / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        # one name per size and scale: a rerun of the same configuration replaces its plots
        prefix = f"bench_{'tiny' if results['tiny'] else 'default'}_x{results['scale']:g}_"
        for name in plots:
            shutil.copyfile(out / name, plot_dir / (prefix + name))
        markdown += "Plots (replaced by the next run of this size and scale): " + ", ".join(f"`plots/{prefix}{name}`" for name in plots) + ".\n"
    atomic_write_text(out / "RESULTS_section.md", markdown)
    if results_md is not None:
        previous = Path(results_md).read_text() if Path(results_md).is_file() else ""
        atomic_write_text(Path(results_md), previous + markdown)
    return {"verdict": "\n".join(lines), "markdown": markdown}


def _json_value(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Cannot write {type(value).__name__} to JSON")
