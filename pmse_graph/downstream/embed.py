"""Event embeddings from a pretrained encoder, streamed to shards: :func:`embed_events`.

ROOT files are read chunk by chunk through the run's schema and standardiser, cut into batches
and encoded without gradients (bfloat16 autocast on GPUs). Each batch's float32 embeddings go to
:class:`~pmse_graph.downstream.embeddings.EmbeddingWriter` with the event ids and the
decay-tree and final-state class ids. Memory is bounded by one read chunk plus one writer shard,
whatever the number of events.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from pmse_graph.data.dataset import SPLITS, split_mask
from pmse_graph.data.graphs import build_batch
from pmse_graph.data.reader import NONFINITE_POLICIES, NonFinitePolicy, ReadStats, iterate_chunks
from pmse_graph.data.validate import expand_files, validate_files
from pmse_graph.downstream.class_names import METADATA_KEY, topology_tables_beside
from pmse_graph.downstream.embeddings import EmbeddingWriter, existing_embedding_files
from pmse_graph.downstream.run_loader import load_run, resolve_device
from pmse_graph.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

Split = Literal["all", "train", "val", "test"]


@dataclass
class EmbedResult:
    """Outcome of :func:`embed_events`.

    Attributes:
        out: the embeddings folder.
        num_events: events written.
        dim: embedding size.
        events_read: events read from the files before the split selection.
    """

    out: Path
    num_events: int
    dim: int
    events_read: int


def encode_batch(encoder: torch.nn.Module, batch, *, device: torch.device) -> torch.Tensor:
    """Encode one batch without gradients and return float32 event embeddings on the CPU.

    GPUs run the forward pass under bfloat16 autocast; the CPU runs it in float32.

    Shapes:
        returns (num_graphs, D) float32.
    """
    batch = batch.to(device)
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        embedding = encoder(batch).event_embedding
    return embedding.float().cpu()


def split_names(event_id: np.ndarray, fractions: tuple[float, float, float]) -> np.ndarray:
    """Return the pretraining split ("train", "val" or "test") of each event id."""
    names = np.full(len(event_id), "test", dtype=object)
    names[split_mask(event_id, "val", fractions)] = "val"
    names[split_mask(event_id, "train", fractions)] = "train"
    return names


def embed_events(
    *,
    run_dir: str | Path,
    data: Sequence[str],
    out: str | Path,
    batch_size: int = 1024,
    split: Split = "all",
    device: str = "auto",
    checkpoint: str | Path | None = None,
    shard_size: int = 262_144,
    step_size: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    nonfinite: NonFinitePolicy = "error",
) -> EmbedResult:
    """Embed every event of ``data`` (or of one split) with the run's encoder and write shards.

    Args:
        run_dir: pretraining run folder.
        data: ROOT files, folders of ``*.root`` files or globs.
        out: embeddings folder to create.
        batch_size: events per encoder call (default 1024).
        split: ``"all"`` (default) or the ``"train"``, ``"val"`` or ``"test"`` split of the run,
            chosen by the same event-id hash and fractions as pretraining.
        device: ``"auto"`` (default), ``"cpu"`` or ``"cuda"``.
        checkpoint: checkpoint file; default the run's ``last.pt``.
        shard_size: events per output shard (default 262,144).
        step_size: entries per read step; default the run's ``data.step_size``.
        progress: show a progress bar over the events read.
        overwrite: replace embeddings already in ``out`` (default False raises instead).
        nonfinite: NaN or infinite inputs: ``"error"`` (default) stops naming file, branch, entry
            and track; ``"drop-event"`` skips those events and counts them in the log line.

    Raises:
        ConfigError: invalid split or sizes.
        DataError: unreadable inputs, no selected events, or non-finite embeddings.
    """
    if split not in SPLITS:
        raise ConfigError(f"Invalid split '{split}' (--split): expected one of {SPLITS}")
    if batch_size < 1:
        raise ConfigError(f"The batch size must be at least 1 (got {batch_size}, --batch-size)")
    if nonfinite not in NONFINITE_POLICIES:
        raise ConfigError(f"Invalid non-finite policy '{nonfinite}': expected one of {NONFINITE_POLICIES} (--nonfinite)")
    # reject a folder that already contains embeddings before loading the checkpoint
    existing_embedding_files(out, overwrite=overwrite)
    run = load_run(run_dir, checkpoint=checkpoint, device=resolve_device(device))
    target_device = next(run.encoder.parameters()).device
    files = expand_files(list(data))
    reports = validate_files(files, run.schema)
    total_entries = sum(report.num_entries for report in reports)
    fractions = run.config.data.split_fractions
    stats = ReadStats()

    metadata = {
        "run_dir": str(Path(run_dir).resolve()),
        "checkpoint": str(run.checkpoint.resolve()),
        "step": run.step,
        "files": files,
        "split": split,
        "split_fractions": list(fractions),
        "schema": run.schema.name,
        # tables naming the decay-tree classes, read by cluster, classify and anomaly (the first one)
        METADATA_KEY: topology_tables_beside(files),
    }
    writer = EmbeddingWriter(out, run.encoder.embed_dim, shard_size=shard_size, metadata=metadata, overwrite=overwrite)
    written = 0
    bar = tqdm(total=total_entries, unit="event", desc="embed", disable=not progress)
    with writer:
        for chunk in iterate_chunks(files, run.schema, step_size=step_size or run.config.data.step_size, validate=False, stats=stats, nonfinite=nonfinite):
            bar.update(chunk.num_events)
            keep = split_mask(chunk.event_id, split, fractions)
            if not keep.any():
                continue
            chunk = chunk if keep.all() else chunk.where(keep)
            for start in range(0, chunk.num_events, batch_size):
                part = chunk.slice(start, start + batch_size)
                batch = build_batch(part, run.standardizer, schema=run.schema, include_p4=False)
                vectors = encode_batch(run.encoder, batch, device=target_device)
                # the writer rejects NaN or infinite embeddings, naming their event ids
                writer.write(vectors.numpy(), event_id=part.event_id, y=part.y, y_fs=part.y_fs, split=split_names(part.event_id, fractions))
                written += part.num_events
        bar.close()
        if written == 0:
            # raised inside the writer block, so no index.json of 0 events is left in the folder
            remedy = "Add input files with events" if split == "all" else "Choose --split all or add input files"
            raise DataError(f"No events of the '{split}' split in {files} ({stats.summary()}). {remedy}")
    logger.info("wrote %d embeddings of size %d to %s (%s)", written, run.encoder.embed_dim, out, stats.summary())
    return EmbedResult(out=Path(out), num_events=written, dim=run.encoder.embed_dim, events_read=stats.events_kept)
