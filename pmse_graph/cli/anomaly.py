"""``pmse-graph anomaly``: kNN-distance anomaly scores, with classes outside the top N as anomalies.

    pmse-graph anomaly --embeddings EMB --out DIR [--k 10] [--top 99] [--topology CSV]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def anomaly(
    embeddings: Annotated[Path, typer.Option("--embeddings", "-e", help="Embeddings folder from 'pmse-graph embed'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder (scores.parquet, metrics.json, roc.png).")],
    k: Annotated[int, typer.Option("--k", help="Nearest labelled events averaged in the score.")] = 10,
    top: Annotated[int, typer.Option("--top", help="Number of largest decay-tree classes treated as known.")] = 99,
    labelled_fraction: Annotated[float, typer.Option("--labelled-fraction", help="Share of events treated as labelled, chosen by event-id hash.")] = 0.5,
    topology: Annotated[
        Optional[Path], typer.Option("--topology", help="topology.csv naming the decay trees (default: the one recorded by 'pmse-graph embed', if any).")
    ] = None,
) -> None:
    """Score events by their distance to labelled events of the known classes and evaluate the score."""
    from pmse_graph.downstream.anomaly import run_anomaly

    metrics = run_anomaly(embeddings=embeddings, out=out, k=k, top=top, labelled_fraction=labelled_fraction, topology=topology)
    typer.echo(f"ROC AUC {metrics['roc_auc']:.4f} on {metrics['anomalous_events']} anomalous and {metrics['normal_events']} normal events")
    for point in metrics["operating_points"]:
        typer.echo(f"  efficiency {point['efficiency']:.3f} at a false-positive rate of {point['false_positive_rate_target']:.0%}")
    typer.echo(f"Results in {out}")


def register(app: typer.Typer) -> None:
    """Add the ``anomaly`` command to ``app``."""
    app.command(name="anomaly")(anomaly)
