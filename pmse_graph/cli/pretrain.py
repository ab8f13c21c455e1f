"""``pmse-graph pretrain``: masked-Siamese pretraining of an encoder on ROOT ntuples.

    pmse-graph pretrain --config configs/pretrain_gnn.yaml --data DIR_OR_FILES --out RUN [--epochs N] [--resume]

Under ``torchrun`` every process runs this command; rank 0 prints and writes the run folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from pmse_graph.config import apply_overrides, load_config


def pretrain(
    config: Annotated[Path, typer.Option("--config", "-c", help="Pretraining configuration YAML (see configs/pretrain_gnn.yaml).")],
    data: Annotated[list[str], typer.Option("--data", "-d", help="ROOT file, folder of *.root files or glob; repeat for more.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for checkpoints, metrics, plots and the resolved config.")],
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Number of epochs; overrides the file.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Events per batch and process; overrides data.batch_size.")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option("--steps-per-epoch", help="Optimiser steps per epoch; overrides data.steps_per_epoch.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate; overrides optim.lr.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of every random generator; overrides the file.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda; overrides the file.")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="fp32 or bf16 (autocast); overrides the file.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from checkpoints/last.pt.")] = False,
) -> None:
    """Pretrain an encoder with masked-particle reconstruction, SupCon and MSN losses."""
    # imported here so that other commands do not pay for torch and PyG at start-up
    from pmse_graph.pretraining.config import PretrainConfig
    from pmse_graph.pretraining.run import run_pretraining

    resolved = apply_overrides(
        load_config(PretrainConfig, config),
        {
            "epochs": epochs,
            "data.batch_size": batch_size,
            "data.steps_per_epoch": steps_per_epoch,
            "optim.lr": lr,
            "seed": seed,
            "device": device,
            "precision": precision,
        },
    )
    result = run_pretraining(config=resolved, data=data, out=out, resume=resume)
    if result.status == "interrupted":
        typer.echo(f"Interrupted at step {result.step}; checkpoint {result.last_checkpoint}. Continue with --resume.")
        raise typer.Exit(code=130)
    # under torchrun every process returns here; only rank 0 reports
    if os.environ.get("RANK", "0") == "0":
        typer.echo(f"Pretraining finished: {result.epoch} epoch(s), {result.step} steps; run folder {out}")


def register(app: typer.Typer) -> None:
    """Add the ``pretrain`` command to ``app``."""
    app.command(name="pretrain")(pretrain)
