"""Fine-tuning of a pretrained encoder with a classification head: :func:`finetune_logits`.

The encoder of a run folder and a :class:`~pmse_graph.models.ClassificationHead` are trained
end to end with the cross-entropy loss on the labelled events of the task's classes. The events
are read from the ROOT files chunk by chunk and each chunk is shuffled in memory, so memory
stays bounded by one chunk. By default the head starts from a linear probe fitted on the frozen
encoder's embeddings of the same events, then the encoder and head train together with the
encoder's learning rate a fraction of the head's. Starting from a trained head keeps the first
steps' large gradients of a random head from distorting the pretrained features ("linear
probing then fine-tuning", A. Kumar et al., ICLR 2022, arXiv:2202.10054). The calibration subset and the unlabelled
events are then scored for :func:`pmse_graph.downstream.classify.evaluate_method`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from pmse_graph.data.chunk import EventChunk
from pmse_graph.data.graphs import build_batch
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.validate import expand_files
from pmse_graph.downstream.labels import ClassTask, calibration_mask, labelled_mask
from pmse_graph.downstream.run_loader import LoadedRun, load_run, resolve_device
from pmse_graph.errors import ConfigError, DataError
from pmse_graph.models import ClassificationHead

logger = logging.getLogger(__name__)

HeadInit = Literal["probe", "random"]


class FineTuneModel(torch.nn.Module):
    """Encoder followed by a classification head on its event embedding."""

    def __init__(self, encoder: torch.nn.Module, head: ClassificationHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, batch) -> torch.Tensor:
        """Shapes: batch of num_graphs events -> (num_graphs, N) logits."""
        return self.head(self.encoder(batch).event_embedding)


def _selected_chunks(files: list[str], run: LoadedRun, select, *, step_size: int) -> Iterator[tuple[EventChunk, np.ndarray]]:
    """Yield (chunk, class index per event) for the events where ``select(chunk, index)`` is True."""
    for chunk in iterate_chunks(files, run.schema, step_size=step_size, validate=False):
        index = select.task.to_index(chunk.y)
        keep = select(chunk, index)
        if keep.any():
            yield chunk.where(keep), index[keep]


class _Selection:
    """Event selection of one pass over the files: training, calibration or evaluation events."""

    def __init__(self, task: ClassTask, kind: str, labelled_fraction: float, calibration_fraction: float) -> None:
        self.task, self.kind = task, kind
        self.labelled_fraction, self.calibration_fraction = labelled_fraction, calibration_fraction

    def __call__(self, chunk: EventChunk, index: np.ndarray) -> np.ndarray:
        labelled = labelled_mask(chunk.event_id, self.labelled_fraction)
        calibration = labelled & calibration_mask(chunk.event_id, self.calibration_fraction)
        chosen = {"train": labelled & ~calibration, "calibration": calibration, "evaluation": ~labelled}[self.kind]
        return chosen & (index >= 0)


def _predict(forward, run: LoadedRun, chunks, *, width: int, batch_size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``forward`` (batch -> (num_graphs, width) tensor) to the selected events without gradients.

    Returns:
        ``(outputs, class index, event id)``: ``(n, width)`` float32 and two ``(n,)`` int64 arrays.
    """
    outputs, labels, event_ids = [], [], []
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for chunk, index in chunks:
            for start in range(0, chunk.num_events, batch_size):
                part = chunk.slice(start, start + batch_size)
                batch = build_batch(part, run.standardizer, schema=run.schema, include_p4=False).to(device)
                outputs.append(forward(batch).float().cpu().numpy())
                labels.append(index[start : start + batch_size])
                event_ids.append(part.event_id)
    if not outputs:
        return np.zeros((0, width), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(outputs), np.concatenate(labels), np.concatenate(event_ids)


def _no_training_events(task: ClassTask, files: list[str]) -> DataError:
    return DataError(f"No labelled training events of the {task.num_classes} classes in {files}. Pass the files that were embedded")


def finetune_logits(
    *,
    run_dir: str | Path,
    data: Sequence[str],
    task: ClassTask,
    labelled_fraction: float,
    calibration_fraction: float,
    epochs: int = 3,
    batch_size: int = 256,
    lr: float = 1e-3,
    encoder_lr_scale: float = 0.1,
    weight_decay: float = 0.01,
    head_init: HeadInit = "probe",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
):
    """Fine-tune the run's encoder with a classification head and score the held-out events.

    Args:
        run_dir: pretraining run folder.
        data: ROOT files, folders or globs (the files that were embedded).
        task: classes and their indices.
        labelled_fraction: share of events treated as labelled (same hash as the frozen methods).
        calibration_fraction: share of labelled events kept for the temperature fit.
        epochs: passes over the labelled training events (default 3).
        batch_size: events per optimiser step (default 256).
        lr: AdamW learning rate of the head (default 1e-3).
        encoder_lr_scale: encoder learning rate as a multiple of ``lr`` (default 0.1).
        weight_decay: AdamW weight decay (default 0.01).
        head_init: ``"probe"`` (default) starts the head from a linear probe on the frozen
            encoder's embeddings of the training events; ``"random"`` from a random head, as
            for an encoder trained from scratch.
        device: ``"auto"`` (default), ``"cpu"`` or ``"cuda"``.
        seed: seed of the head's initialisation and the in-chunk shuffles (default 0).
        progress: show a progress bar over the optimiser steps of each epoch.

    Returns:
        A :class:`~pmse_graph.downstream.classify.MethodOutput`.

    Raises:
        ConfigError: invalid sizes.
        DataError: no labelled training events of the task's classes in ``data``.
    """
    from pmse_graph.downstream.classify import MethodOutput, train_linear_probe

    if epochs < 1 or batch_size < 1:
        raise ConfigError(f"Fine-tuning needs epochs >= 1 and batch_size >= 1 (got {epochs} and {batch_size})")
    if head_init not in get_args(HeadInit):
        raise ConfigError(f"Expected head_init in {get_args(HeadInit)} (got {head_init!r})")
    torch.manual_seed(seed)
    target = resolve_device(device)
    run = load_run(run_dir, device=target)
    files = expand_files(list(data))
    step_size = run.config.data.step_size
    model = FineTuneModel(run.encoder, ClassificationHead(run.encoder.embed_dim, task.num_classes)).to(target)
    optimizer = torch.optim.AdamW(
        [{"params": model.encoder.parameters(), "lr": lr * encoder_lr_scale}, {"params": model.head.parameters(), "lr": lr}],
        weight_decay=weight_decay,
    )
    selection = {kind: _Selection(task, kind, labelled_fraction, calibration_fraction) for kind in ("train", "calibration", "evaluation")}
    rng = np.random.default_rng(seed)

    # linear probe on the frozen encoder as the head's starting point
    if head_init == "probe":
        model.eval()
        vectors, index, _ = _predict(
            lambda batch: model.encoder(batch).event_embedding, run, _selected_chunks(files, run, selection["train"], step_size=step_size),
            width=run.encoder.embed_dim, batch_size=batch_size, device=target,
        )
        if len(index) == 0:
            raise _no_training_events(task, files)
        model.head.load_state_dict(train_linear_probe(vectors, index, num_classes=task.num_classes).state_dict())
        logger.info("fine-tune: the head starts from a linear probe on %d frozen embeddings", len(index))

    for epoch in range(epochs):
        model.train()
        steps, loss_sum = 0, 0.0
        bar = tqdm(desc=f"fine-tune epoch {epoch}", unit="step", disable=not progress)
        for chunk, index in _selected_chunks(files, run, selection["train"], step_size=step_size):
            order = rng.permutation(chunk.num_events)
            chunk, index = chunk.select(order), index[order]
            for start in range(0, chunk.num_events, batch_size):
                part = chunk.slice(start, start + batch_size)
                batch = build_batch(part, run.standardizer, schema=run.schema, include_p4=False).to(target)
                labels = torch.from_numpy(index[start : start + batch_size]).to(target)
                with torch.autocast(device_type=target.type, dtype=torch.bfloat16, enabled=target.type == "cuda"):
                    logits = model(batch)
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
                if not torch.isfinite(loss):
                    raise DataError(f"Fine-tuning diverged at epoch {epoch}, step {steps}: the loss is {float(loss)}. Lower --finetune-lr")
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                steps += 1
                loss_sum += float(loss.detach())
                bar.update(1)
        bar.close()
        if steps == 0:
            raise _no_training_events(task, files)
        logger.info("fine-tune epoch %d: %d steps, mean loss %.4f", epoch, steps, loss_sum / steps)

    model.eval()
    scored = {
        kind: _predict(model, run, _selected_chunks(files, run, selection[kind], step_size=step_size), width=task.num_classes, batch_size=batch_size, device=target)
        for kind in ("calibration", "evaluation")
    }
    calibration_logits, calibration_index, _ = scored["calibration"]
    evaluation_logits, evaluation_index, evaluation_ids = scored["evaluation"]
    return MethodOutput(calibration_logits, calibration_index, evaluation_logits, evaluation_index, evaluation_ids)
