"""The pretraining loop: :class:`Trainer`.

One optimiser step does:

1. mask a fraction of each event's particles (:mod:`pmse_graph.pretraining.masking`),
2. run the online branch on the masked view and, when a loss needs it, the EMA target on the
   unmasked view,
3. add the enabled loss terms (reconstruction, SupCon, MSN) with their weights,
4. stop with :class:`TrainingDivergedError` when the loss is NaN or inf, naming the step, the
   batch's event ids and the last good checkpoint,
5. back-propagate, clip the global gradient norm, take an AdamW step at the warm-up + cosine
   learning rate, and move the target towards the online weights.

Checkpoints are written atomically at the end of every epoch and when SIGINT or SIGTERM
arrives (after the step in progress). ``resume=True`` continues from ``checkpoints/last.pt``
and ends with the same weights as an uninterrupted run. Each step draws its masks and dropout
from generators seeded by ``(seed, step, rank)``. The batch source is deterministic per epoch,
so the resumed run skips the batches already used and then reads the same data.

Under ``torchrun`` the online branch is wrapped in DistributedDataParallel; only rank 0 prints,
writes metrics and checkpoints.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from pmse_graph.errors import DataError, PmseError
from pmse_graph.models.base import check_batch
from pmse_graph.pretraining.checkpoint import (
    LAST_NAME,
    capture_rng_state,
    epoch_checkpoint_name,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.distributed import DistributedContext
from pmse_graph.pretraining.ema import cosine_momentum, ema_update_
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss
from pmse_graph.pretraining.losses.supcon import supcon_loss
from pmse_graph.pretraining.masking import sample_node_mask
from pmse_graph.pretraining.metrics import MetricsLogger, plot_loss_curves
from pmse_graph.pretraining.optimizer import build_adamw
from pmse_graph.pretraining.model import PretrainModel, TargetBranch, target_source
from pmse_graph.pretraining.schedule import warmup_cosine_lr

logger = logging.getLogger(__name__)

BatchSource = Callable[[int], Iterable[Any]]
"""Callable returning the batches of one epoch; the same epoch must give the same batches."""

ValidMask = Callable[[Any], "Tensor | None"]
"""Callable returning the (num_nodes, F) bool matrix of regressable values of a batch, or None."""

MAX_IDS_IN_MESSAGE = 50


class TrainingDivergedError(PmseError):
    """A loss became NaN or inf; the message names the step, the events and the last good checkpoint."""


@dataclass
class FitResult:
    """Outcome of one call to :meth:`Trainer.fit`."""

    status: Literal["completed", "interrupted"]
    step: int
    epoch: int
    last_checkpoint: Path | None
    epoch_losses: list[dict[str, float]] = field(default_factory=list)


@dataclass
class EpochProgress:
    """Running totals of the epoch in progress: summed step values, steps, events and seconds."""

    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    events: int = 0
    seconds: float = 0.0

    def add(self, values: dict[str, float], *, events: int, seconds: float) -> None:
        """Add one step's values and events; ``seconds`` is the epoch's elapsed time so far."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.steps += 1
        self.events += events
        self.seconds = seconds

    def means(self) -> dict[str, float]:
        """Return the mean of every summed value over the epoch's steps."""
        return {name: total / max(self.steps, 1) for name, total in self.sums.items()}

    def to_payload(self) -> dict[str, Any]:
        """Plain types for a checkpoint."""
        return {"sums": dict(self.sums), "steps": self.steps, "events": self.events, "seconds": self.seconds}

    @classmethod
    def from_payload(cls, payload: dict[str, Any] | None) -> "EpochProgress":
        """Rebuild from :meth:`to_payload` output; ``None`` (an older checkpoint) gives empty totals."""
        if not payload:
            return cls()
        return cls(
            sums={name: float(value) for name, value in payload["sums"].items()},
            steps=int(payload["steps"]),
            events=int(payload["events"]),
            seconds=float(payload["seconds"]),
        )


def _step_seed(seed: int, step: int, rank: int) -> int:
    # a fixed mix of the three integers, kept below 2**63 for torch.Generator.manual_seed
    return (seed * 1_000_003 + step * 7_919 + rank * 104_729) % (2**63 - 1)


class Trainer:
    """Masked-Siamese pretraining loop over ``config.epochs`` epochs.

    Args:
        config: the run configuration.
        online: online branch from :func:`pmse_graph.pretraining.model.build_pretrain_model`.
        target: EMA target branch, or ``None`` when no loss uses it.
        batches: epoch -> iterable of PyG batches of this rank, deterministic per epoch.
        steps_per_epoch: optimiser steps per epoch (a source that runs out is read again).
        run_dir: run folder; checkpoints go to ``run_dir/checkpoints``.
        reconstruction: reconstruction loss bound to the schema's groups; needed when enabled.
        valid_mask: returns which values of ``batch.x`` are real (not fill values of an absent
            group); ``None`` regresses every value.
        context: distributed context; default single process on ``config.device``.
        checkpoint_payload: extra plain entries stored in every checkpoint (schema name ...).
    """

    def __init__(
        self,
        *,
        config: PretrainConfig,
        online: PretrainModel,
        target: TargetBranch | None,
        batches: BatchSource,
        steps_per_epoch: int,
        run_dir: str | Path,
        reconstruction: ReconstructionLoss | None = None,
        valid_mask: ValidMask | None = None,
        context: DistributedContext,
        checkpoint_payload: dict[str, Any] | None = None,
    ) -> None:
        if steps_per_epoch < 1:
            raise DataError(f"steps_per_epoch must be at least 1 (got {steps_per_epoch}). The training data may have too few events")
        if config.loss.reconstruction.enabled and reconstruction is None:
            raise ValueError("Expected a ReconstructionLoss when loss.reconstruction is enabled (got None)")
        self.config = config
        self.context = context
        self.device = context.device
        self.online = online.to(self.device)
        self.target = target.to(self.device) if target is not None else None
        self.batches = batches
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = steps_per_epoch * config.epochs
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.reconstruction = reconstruction
        self.valid_mask = valid_mask
        self.checkpoint_payload = dict(checkpoint_payload or {})

        self.module: nn.Module = self.online
        if config.compile:
            # Measured by benchmarks/bench_pretrain.py --compile on a CPU only (see the configs'
            # comment). The sparse graph encoder compiles as one graph. The dense path and the
            # transformer still break at to_dense_batch, whose padded size depends on the data.
            # Module.compile() keeps the state-dict keys, so checkpoints load without compiling.
            self.online.encoder.compile(dynamic=True)
        if context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # find_unused_parameters: the mask token and edge-mask embedding get no gradient in a
            # batch whose events all have a single particle
            self.module = DistributedDataParallel(self.online, device_ids=device_ids, find_unused_parameters=True)
        self.optimizer = self._build_optimizer()

        self.step = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.last_checkpoint: Path | None = None
        self.counters = {"supcon_batches_without_positive": 0}
        # running totals of the epoch in progress, stored in checkpoints so that a resumed epoch
        # still averages over all its steps
        self.epoch_progress = EpochProgress()
        self._stop_signal: int | None = None
        self._stopping = False  # every rank agreed to stop (the all-reduced stop flag)
        self.metrics = MetricsLogger(path=self.run_dir / "metrics.jsonl", enabled=context.is_main, tensorboard_dir=self.run_dir / "tensorboard")

    # ----------------------------------------------------------------- set-up

    def _build_optimizer(self) -> torch.optim.Optimizer:
        # biases, norms, nn.Embedding tables and learned tokens are exempt, chosen by module type
        optim = self.config.optim
        return build_adamw(self.online, lr=optim.lr, weight_decay=optim.weight_decay, betas=optim.betas)

    # ----------------------------------------------------------- checkpoints

    def state_payload(self) -> dict[str, Any]:
        """Return the checkpoint content: tensors and plain types only."""
        return {
            **self.checkpoint_payload,
            "model": self.online.state_dict(),
            "target": self.target.state_dict() if self.target is not None else {},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "counters": dict(self.counters),
            "epoch_progress": self.epoch_progress.to_payload(),
            "rng": capture_rng_state(),
            "config": self.config.model_dump(mode="json"),
        }

    def save(self, name: str) -> Path:
        """Write a checkpoint under ``checkpoints/`` and copy it to ``last.pt`` (rank 0 only)."""
        path = self.checkpoint_dir / name
        if self.context.is_main:
            payload = self.state_payload()
            save_checkpoint(path, payload)
            if name != LAST_NAME:
                save_checkpoint(self.checkpoint_dir / LAST_NAME, payload)
            logger.info("checkpoint written: %s (step %d)", path, self.step)
        if self.context.distributed:
            dist.barrier()
        self.last_checkpoint = path
        return path

    def load(self, path: str | Path) -> None:
        """Restore weights, optimiser, counters and random generators from a checkpoint."""
        payload = load_checkpoint(path, map_location=self.device)
        if payload["steps_per_epoch"] != self.steps_per_epoch:
            raise PmseError(
                f"Checkpoint {path} was written with {payload['steps_per_epoch']} steps per epoch, this run has "
                f"{self.steps_per_epoch}. Resume with the same data, batch size and number of processes"
            )
        if payload["config"]["encoder"] != self.config.model_dump(mode="json")["encoder"]:
            raise PmseError(f"Checkpoint {path} has a different encoder configuration than this run. Resume with the config.yaml of that run folder")
        self.online.load_state_dict(payload["model"])
        if self.target is not None:
            self.target.load_state_dict(payload["target"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.step = int(payload["step"])
        self.epoch = int(payload["epoch"])
        self.step_in_epoch = int(payload["step_in_epoch"])
        self.counters.update(payload["counters"])
        self.epoch_progress = EpochProgress.from_payload(payload.get("epoch_progress"))
        restore_rng_state(payload["rng"])
        self.last_checkpoint = Path(path)
        logger.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step)

    # ------------------------------------------------------------- signals

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:
            raise KeyboardInterrupt
        self._stop_signal = signum
        logger.warning("received %s: stopping after the current step and writing a checkpoint", signal.Signals(signum).name)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    # ---------------------------------------------------------------- loop

    def _epoch_batches(self, epoch: int, *, skip: int) -> Iterator[Any]:
        """Yield the epoch's batches endlessly (re-reading the source), after skipping ``skip``."""
        produced = 0
        while True:
            empty = True
            for batch in self.batches(epoch):
                empty = False
                if produced >= skip:
                    yield batch
                produced += 1
            if empty:
                raise DataError(f"The training data produced no batch in epoch {epoch}. Check the input files and the batch size")

    def fit(self, *, resume: bool = False) -> FitResult:
        """Train to the end of ``config.epochs``, or until SIGINT/SIGTERM.

        Args:
            resume: continue from ``checkpoints/last.pt`` in the run folder.

        Returns:
            :class:`FitResult` with ``status="interrupted"`` when a signal stopped the run.

        Raises:
            TrainingDivergedError: when a loss is NaN or inf.
        """
        if resume:
            self.load(self.checkpoint_dir / LAST_NAME)
        previous_handlers = self._install_signal_handlers()
        epoch_losses: list[dict[str, float]] = []
        try:
            while self.epoch < self.config.epochs:
                summary = self._run_epoch()
                if summary is not None:
                    epoch_losses.append(summary)
                if summary is None or (self._stopping and self.epoch < self.config.epochs):
                    return FitResult(status="interrupted", step=self.step, epoch=self.epoch, last_checkpoint=self.last_checkpoint, epoch_losses=epoch_losses)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            self._plot()
            self.metrics.close()
        return FitResult(status="completed", step=self.step, epoch=self.epoch, last_checkpoint=self.last_checkpoint, epoch_losses=epoch_losses)

    def _run_epoch(self) -> dict[str, float] | None:
        """Train one epoch from ``step_in_epoch``; return its mean losses, or ``None`` when interrupted.

        A stop request during the epoch's last step lets the epoch finish first, with its summary
        record and epoch checkpoint. The run then stops before the next epoch.
        """
        epoch = self.epoch
        if self.step_in_epoch == 0:
            self.epoch_progress = EpochProgress()
        progress_sums = self.epoch_progress
        stream = self._epoch_batches(epoch, skip=self.step_in_epoch)
        started = time.perf_counter() - progress_sums.seconds
        progress = tqdm(
            total=self.steps_per_epoch,
            initial=self.step_in_epoch,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="step",
            disable=not self.context.is_main,
            dynamic_ncols=True,
        )
        with progress:
            while self.step_in_epoch < self.steps_per_epoch:
                batch = next(stream)
                step_started = time.perf_counter()
                values, stop = self._train_step(batch)
                elapsed = time.perf_counter() - step_started
                num_events = int(batch.num_graphs) * self.context.world_size
                values["events_per_s"] = num_events / max(elapsed, 1e-9)

                self.step += 1
                self.step_in_epoch += 1
                progress_sums.add(values, events=num_events, seconds=time.perf_counter() - started)
                if self.step % self.config.log_every == 0 or self.step_in_epoch == self.steps_per_epoch:
                    self.metrics.log(kind="step", step=self.step, epoch=epoch, values=values)
                progress.update(1)
                progress.set_postfix(loss=f"{values['loss']:.4f}", events_per_s=f"{values['events_per_s']:.0f}")

                if stop:
                    self._stopping = True
                    if self.step_in_epoch < self.steps_per_epoch:
                        self.save(LAST_NAME)
                        return None

        summary = progress_sums.means()
        events = progress_sums.events
        summary["events"] = float(events)
        summary["seconds"] = time.perf_counter() - started
        summary.update({name: float(count) for name, count in self.counters.items()})
        self.metrics.log(kind="epoch", step=self.step, epoch=epoch, values=summary)
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_progress = EpochProgress()
        self.save(epoch_checkpoint_name(epoch))
        self._plot()
        if self.context.is_main:
            logger.info("epoch %d done: loss %.4f, %.0f events in %.1f s", epoch + 1, summary.get("loss", float("nan")), events, summary["seconds"])
        return summary

    def _plot(self) -> None:
        if self.context.is_main and (self.run_dir / "metrics.jsonl").is_file():
            plot_loss_curves(metrics_path=self.run_dir / "metrics.jsonl", png_path=self.run_dir / "loss_curves.png")

    # ---------------------------------------------------------------- step

    def _train_step(self, batch: Any) -> tuple[dict[str, float], bool]:
        """Run one optimiser step; return the logged values and whether every rank should stop."""
        config = self.config
        batch = batch.to(self.device)
        seed = _step_seed(config.seed, self.step, self.context.rank)
        torch.manual_seed(seed)  # dropout draws of this step
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        node_mask = sample_node_mask(batch.batch, num_graphs=int(batch.num_graphs), fraction=config.masking.fraction, generator=generator)

        lr = warmup_cosine_lr(
            step=self.step,
            total_steps=self.total_steps,
            base_lr=config.optim.lr,
            warmup_steps=config.optim.warmup_steps,
            min_lr_ratio=config.optim.min_lr_ratio,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        momentum = cosine_momentum(step=self.step, total_steps=self.total_steps, start=config.ema.start, end=config.ema.end)

        if config.compile:
            # the compiled encoder skips its own input check, which would break its graph
            check_batch(batch, self.online.encoder.spec, node_mask)
        self.module.train()
        autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
        with autocast:
            target_projection = None
            if self.target is not None:
                with torch.no_grad():
                    self.target.train()
                    target_projection = self.target(batch)
            online = self.module(batch, node_mask, target_projection)
        total, values = self._losses(batch, node_mask, online, target_projection)

        # one collective per step: every rank learns whether any loss diverged or any rank was signalled
        flags = torch.tensor([float(torch.isfinite(total)), 0.0 if self._stop_signal is not None else 1.0], device=self.device)
        if self.context.distributed:
            dist.all_reduce(flags, op=dist.ReduceOp.MIN)
        if flags[0] < 1:
            self._raise_diverged(batch, values)

        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.optim.grad_clip is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.online.parameters(), config.optim.grad_clip)
            values["grad_norm"] = float(grad_norm)
        self.optimizer.step()
        if self.target is not None:
            ema_update_(self.target, target_source(self.online), momentum=momentum)

        values.update({"lr": lr, "ema_momentum": momentum, "masked_fraction": float(node_mask.float().mean()) if node_mask.numel() else 0.0})
        return values, bool(flags[1] < 1)

    def _losses(self, batch: Any, node_mask: Tensor, online: Any, target_projection: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """Add the enabled loss terms; return the total and every term as a float."""
        losses = self.config.loss
        terms: list[Tensor] = []
        values: dict[str, float] = {}

        if losses.reconstruction.enabled:
            assert self.reconstruction is not None and online.reconstruction is not None  # checked in __init__
            valid = self.valid_mask(batch) if self.valid_mask is not None else None
            result = self.reconstruction(
                online.reconstruction.continuous,
                online.reconstruction.categorical_logits,
                target_x=batch.x[node_mask],
                target_cat=batch.x_cat[node_mask],
                valid=valid[node_mask] if valid is not None else None,
            )
            terms.append(losses.reconstruction.weight * result.loss)
            values["loss_reconstruction"] = float(result.loss.detach())
            values.update({f"reconstruction/{name}": float(term) for name, term in result.terms.items()})

        if losses.supcon.enabled:
            labels = getattr(batch, losses.supcon.label)
            features = online.projection
            if losses.supcon.include_target_view and target_projection is not None:
                features = torch.cat([features, target_projection.to(features.dtype)], dim=0)
                labels = torch.cat([labels, labels], dim=0)
            result = supcon_loss(features, labels, temperature=losses.supcon.temperature, hard_negative_beta=losses.supcon.hard_negative_beta)
            if result.num_anchors == 0:
                self.counters["supcon_batches_without_positive"] += 1
            terms.append(losses.supcon.weight * result.loss)
            values["loss_supcon"] = float(result.loss.detach())
            values["supcon_anchors"] = float(result.num_anchors)

        if losses.msn.enabled:
            result = online.msn
            terms.append(losses.msn.weight * result.loss)
            values["loss_msn"] = float(result.loss.detach())
            values["msn_cross_entropy"] = float(result.cross_entropy.detach())
            values["msn_mean_entropy"] = float(result.mean_entropy)
            values["msn_target_entropy"] = float(result.target_entropy)

        total = torch.stack(terms).sum()
        values["loss"] = float(total.detach())
        return total, values

    def _raise_diverged(self, batch: Any, values: dict[str, float]) -> None:
        event_ids = batch.event_id.detach().cpu().tolist() if hasattr(batch, "event_id") else []
        listed_ids = ", ".join(str(event_id) for event_id in event_ids[:MAX_IDS_IN_MESSAGE])
        if len(event_ids) > MAX_IDS_IN_MESSAGE:
            listed_ids += f", ... ({len(event_ids)} events)"
        bad_terms = ", ".join(f"{name}={value}" for name, value in values.items() if name.startswith("loss") and not torch.isfinite(torch.tensor(value)))
        last = str(self.last_checkpoint) if self.last_checkpoint is not None else "none written yet"
        raise TrainingDivergedError(
            f"Non-finite loss at step {self.step} (epoch {self.epoch}, rank {self.context.rank}): {bad_terms or 'on another rank'}. "
            f"Batch event ids: [{listed_ids}]. Last good checkpoint: {last}. "
            "Lower optim.lr or check these events' inputs, then rerun with --resume."
        )
