"""``pmse-graph demo``: the whole pipeline on generated events, stage by stage.

    pmse-graph demo --out demo_output [--events 20000] [--epochs 4]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for every stage's output and the report.")] = Path("demo_output"),
    events: Annotated[int, typer.Option("--events", help="Number of generated events.")] = 20_000,
    epochs: Annotated[int, typer.Option("--epochs", help="Pretraining epochs.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generator and of training.")] = 1,
) -> None:
    """Simulate, inspect, pretrain, embed, cluster, classify, score anomalies and write the report."""
    from pmse_graph.demo import DemoSettings, run_demo

    run_demo(out, DemoSettings(events=events, seed=seed, epochs=epochs))


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command(name="demo")(demo)
