"""``pmse-graph embed``: event embeddings of ROOT files with a pretrained encoder.

    pmse-graph embed --run RUN --data FILES... --out EMB [--batch-size 1024] [--split all] [--nonfinite error]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def embed(
    run: Annotated[Path, typer.Option("--run", help="Pretraining run folder (the --out of 'pmse-graph pretrain').")],
    data: Annotated[list[str], typer.Option("--data", "-d", help="ROOT file, folder of *.root files or glob; repeat for more.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Embeddings folder to create (float32 shards plus index.json).")],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Events per encoder call.")] = 1024,
    split: Annotated[str, typer.Option("--split", help="all, or the run's train, val or test split (by event-id hash).")] = "all",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Checkpoint file; default RUN/checkpoints/last.pt.")] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", help="Events per output shard.")] = 262_144,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace embeddings already in --out.")] = False,
    nonfinite: Annotated[
        str, typer.Option("--nonfinite", help="NaN or infinite inputs: error (stop, naming file, branch and entry) or drop-event (skip and count them).")
    ] = "error",
) -> None:
    """Embed every event of the input files and write the embeddings with their event ids and class ids."""
    from pmse_graph.downstream.embed import embed_events

    result = embed_events(
        run_dir=run, data=data, out=out, batch_size=batch_size, split=split, device=device,
        checkpoint=checkpoint, shard_size=shard_size, overwrite=overwrite, nonfinite=nonfinite,
    )
    typer.echo(f"Embedded {result.num_events} events (dimension {result.dim}) into {result.out}")


def register(app: typer.Typer) -> None:
    """Add the ``embed`` command to ``app``."""
    app.command(name="embed")(embed)
