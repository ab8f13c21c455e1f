"""The end-to-end demo: every pipeline stage on freshly generated J/psi events.

    pmse-graph demo --out demo_output        # what `make demo` runs

Each stage is the ``pmse-graph`` command a user would type, run as a subprocess
and printed before it starts, so the demo doubles as a walk-through of the
command line: simulate, inspect, pretrain, embed, cluster, classify, anomaly,
report.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pmse_graph.errors import PmseError
from pmse_graph.resources import config_path

logger = logging.getLogger(__name__)

MARKER = ".pmse-graph-demo"
"""File that marks a folder as demo output, so a rerun may replace it."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo run.

    Attributes:
        events: generated events.
        seed: generator and training seed.
        epochs: pretraining epochs of the small encoder in ``configs/pretrain_demo.yaml``.
        k_values: k-means cluster counts to run; the t-SNE map is drawn for the first only.
    """

    events: int = 20_000
    seed: int = 1
    epochs: int = 4
    k_values: tuple[int, ...] = (99, 1000)


def demo_commands(out: Path, settings: DemoSettings) -> list[list[str]]:
    """Return the ``pmse-graph`` argument lists of every demo stage, in order."""
    events = out / "events"
    run = out / "run"
    embeddings = out / "embeddings"
    commands = [
        ["simulate", "--events", str(settings.events), "--seed", str(settings.seed), "--out", str(events), "--no-progress"],
        ["inspect", str(events)],
        [
            "pretrain",
            "--config", str(config_path("pretrain_demo.yaml")),
            "--data", str(events),
            "--out", str(run),
            "--epochs", str(settings.epochs),
            "--seed", str(settings.seed),
        ],
        ["embed", "--run", str(run), "--data", str(events), "--out", str(embeddings), "--overwrite"],
    ]
    for index, k in enumerate(settings.k_values):
        tsne_points = "3000" if index == 0 else "0"
        commands.append(
            ["cluster", "--embeddings", str(embeddings), "--k", str(k), "--out", str(out / f"cluster_k{k}"), "--tsne-points", tsne_points]
        )
    commands += [
        ["classify", "--embeddings", str(embeddings), "--out", str(out / "classify"), "--method", "all",
         "--run", str(run), "--data", str(events), "--finetune-epochs", "2"],
        ["anomaly", "--embeddings", str(embeddings), "--out", str(out / "anomaly")],
        [
            "report", str(run),
            *[argument for k in settings.k_values for argument in ("--cluster", str(out / f"cluster_k{k}"))],
            "--classify", str(out / "classify"),
            "--anomaly", str(out / "anomaly"),
            "--out", str(out / "report"),
        ],
    ]
    return commands


def run_demo(out: Path, settings: DemoSettings = DemoSettings()) -> Path:
    """Run every demo stage in ``out`` and return the path of the HTML report.

    Raises:
        PmseError: when a stage fails, naming the command to rerun by hand.
    """
    _prepare_output(out)
    started = time.perf_counter()
    for args in demo_commands(out, settings):
        command = [sys.executable, "-m", "pmse_graph", *args]
        print(f"\n$ pmse-graph {shlex.join(args)}", flush=True)
        stage_start = time.perf_counter()
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            raise PmseError(f"Demo stage failed with exit status {result.returncode}: pmse-graph {shlex.join(args)}")
        print(f"  ({time.perf_counter() - stage_start:.0f} s)", flush=True)
    report = out / "report.html"
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s. Report: {report.resolve()}")
    return report


def _prepare_output(out: Path) -> None:
    """Create ``out``, or empty it when an earlier demo wrote it; never touch other folders."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise PmseError(f"{out} is not empty and was not written by the demo; choose another --out")
        logger.info("removing the earlier demo output in %s", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Written by 'pmse-graph demo'; a rerun replaces this folder.\n")
