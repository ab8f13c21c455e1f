"""``pmse-graph classify``: the top-N decay-class task on embeddings, half of the events labelled.

    pmse-graph classify --embeddings EMB --out DIR [--method all] [--top 99] [--labelled-fraction 0.5] [--run RUN --data FILES] [--topology CSV]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def classify(
    embeddings: Annotated[Path, typer.Option("--embeddings", "-e", help="Embeddings folder from 'pmse-graph embed'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder (predictions, metrics, tables, plots).")],
    method: Annotated[str, typer.Option("--method", help="probe, knn, finetune or all; all skips finetune without --run and --data.")] = "all",
    top: Annotated[int, typer.Option("--top", help="Number of largest decay-tree classes to classify.")] = 99,
    labelled_fraction: Annotated[float, typer.Option("--labelled-fraction", help="Share of events treated as labelled, chosen by event-id hash.")] = 0.5,
    calibration_fraction: Annotated[float, typer.Option("--calibration-fraction", help="Share of the labelled events used only to fit the temperature.")] = 0.2,
    k: Annotated[int, typer.Option("--k", help="Neighbours of the kNN classifier.")] = 20,
    pr_classes: Annotated[int, typer.Option("--pr-classes", help="Number of largest classes drawn in the precision-recall plots.")] = 5,
    probe_epochs: Annotated[int, typer.Option("--probe-epochs", help="Training epochs of the linear probe.")] = 30,
    run: Annotated[Optional[Path], typer.Option("--run", help="Pretraining run folder, needed for finetune.")] = None,
    data: Annotated[Optional[list[str]], typer.Option("--data", "-d", help="ROOT files that were embedded, needed for finetune; repeat for more.")] = None,
    finetune_epochs: Annotated[int, typer.Option("--finetune-epochs", help="Fine-tuning epochs over the labelled events.")] = 3,
    finetune_lr: Annotated[float, typer.Option("--finetune-lr", help="AdamW learning rate of the head; the encoder gets 0.1 of it.")] = 1e-3,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Events per fine-tuning step.")] = 256,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda, for fine-tuning.")] = "auto",
    topology: Annotated[
        Optional[Path], typer.Option("--topology", help="topology.csv naming the decay trees (default: the one recorded by 'pmse-graph embed', if any).")
    ] = None,
) -> None:
    """Classify the top decay-tree classes with a linear probe, kNN and fine-tuning, and evaluate them."""
    from pmse_graph.downstream.classify import ProbeSettings, run_classification

    metrics = run_classification(
        embeddings=embeddings, out=out, method=method, top=top, labelled_fraction=labelled_fraction,
        calibration_fraction=calibration_fraction, k=k, pr_classes=pr_classes, probe=ProbeSettings(epochs=probe_epochs),
        run_dir=run, data=data or (),
        finetune_options={"epochs": finetune_epochs, "lr": finetune_lr, "batch_size": batch_size, "device": device},
        topology=topology,
    )
    if len(metrics["classes"]) < top:
        typer.echo(f"--top {top} is more than the {len(metrics['classes'])} classes with labelled events, so all of them are used")
    for name, summary in metrics["methods"].items():
        typer.echo(f"{name}: accuracy {summary['accuracy']:.4f}, macro F1 {summary['macro_f1']:.4f}, weighted F1 {summary['weighted_f1']:.4f} on {summary['events']} events")
    typer.echo(f"Results in {out}")


def register(app: typer.Typer) -> None:
    """Add the ``classify`` command to ``app``."""
    app.command(name="classify")(classify)
