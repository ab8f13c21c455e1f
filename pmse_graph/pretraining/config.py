"""Configuration of a pretraining run: :class:`PretrainConfig` and its sections.

``configs/pretrain_gnn.yaml`` and ``configs/pretrain_transformer.yaml`` are serialisations of
this object. The run folder receives the resolved copy as ``config.yaml``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pmse_graph.config import StrictModel
from pmse_graph.models.config import EncoderConfig

Precision = Literal["fp32", "bf16"]
DeviceChoice = Literal["auto", "cpu", "cuda"]


class DataSection(StrictModel):
    """Input schema, split, standardisation and batching of the training events.

    Attributes:
        schema_name: schema name (``"besiii"``, ``"hzz"``) or path to a schema YAML.
        batch_size: events per batch on each process.
        steps_per_epoch: optimiser steps per epoch; ``None`` derives it from the event count of
            the standardisation pass, divided by ``batch_size`` times the number of processes.
        shuffle_buffer: events held by the streaming shuffle buffer.
        split: dataset split to train on (by a hash of the event id, so it never overlaps
            the validation or test split).
        split_fractions: train, validation and test shares of the events.
        standardizer: path of a saved standardisation JSON; ``None`` fits one in a streaming
            pass over the training files.
        balanced: draw class-balanced batches (``classes_per_batch`` classes with
            ``events_per_class`` events each) instead of plain shuffled ones.
        classes_per_batch: classes per balanced batch.
        events_per_class: events of each class per balanced batch (the ``m`` of an m-per-class
            sampler); ``classes_per_batch * events_per_class`` replaces ``batch_size``.
        step_size: events read per chunk from the ROOT files.
    """

    schema_name: str = "besiii"
    batch_size: int = Field(default=256, ge=2)
    steps_per_epoch: int | None = Field(default=None, ge=1)
    shuffle_buffer: int = Field(default=10_000, ge=1)
    split: Literal["train", "val", "test", "all"] = "train"
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    standardizer: str | None = None
    balanced: bool = False
    classes_per_batch: int = Field(default=32, ge=2)
    events_per_class: int = Field(default=4, ge=2)
    step_size: int = Field(default=50_000, ge=1)


class OptimSection(StrictModel):
    """AdamW with linear warm-up and cosine decay to ``min_lr_ratio * lr``, plus clipping.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay (not applied to biases, norm parameters,
            ``nn.Embedding`` tables or learned tokens; see :mod:`pmse_graph.pretraining.optimizer`).
        betas: AdamW moment coefficients.
        warmup_steps: linear warm-up length in optimiser steps.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        grad_clip: max global gradient norm; ``None`` disables clipping.
    """

    lr: float = Field(default=5e-4, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(default=500, ge=0)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)
    grad_clip: float | None = Field(default=1.0, gt=0)


class MaskingSection(StrictModel):
    """Share of particles per event that the online view masks (at least one, never all)."""

    fraction: float = Field(default=0.3, gt=0, lt=1)


class EMASection(StrictModel):
    """Momentum of the target encoder, rising on a half cosine from ``start`` to ``end``."""

    start: float = Field(default=0.996, ge=0, le=1)
    end: float = Field(default=1.0, ge=0, le=1)


class ReconstructionSection(StrictModel):
    """Masked-particle reconstruction term."""

    enabled: bool = True
    weight: float = Field(default=1.0, ge=0)


class SupConSection(StrictModel):
    """Supervised contrastive term on the decay-tree label.

    Attributes:
        label: batch attribute holding the class id, ``y`` (decay tree) or ``y_fs`` (final state).
        include_target_view: contrast the target view's embeddings too, which gives each event
            its own unmasked view as a positive.
        hard_negative_beta: concentration of the hard-negative weights; 0 turns them off.
    """

    enabled: bool = True
    weight: float = Field(default=1.0, ge=0)
    temperature: float = Field(default=0.1, gt=0)
    label: Literal["y", "y_fs"] = "y"
    include_target_view: bool = False
    hard_negative_beta: float = Field(default=0.0, ge=0)


class MSNSection(StrictModel):
    """Self-supervised prototype term (Masked Siamese Networks), needs no labels."""

    enabled: bool = False
    weight: float = Field(default=1.0, ge=0)
    num_prototypes: int = Field(default=256, ge=2)
    temperature: float = Field(default=0.1, gt=0)
    target_temperature: float = Field(default=0.025, gt=0)
    mean_entropy_weight: float = Field(default=1.0, ge=0)


class LossSection(StrictModel):
    """Switches and weights of the three loss terms."""

    reconstruction: ReconstructionSection = ReconstructionSection()
    supcon: SupConSection = SupConSection()
    msn: MSNSection = MSNSection()

    @model_validator(mode="after")
    def _check_any_enabled(self) -> "LossSection":
        if not (self.reconstruction.enabled or self.supcon.enabled or self.msn.enabled):
            raise ValueError("at least one of loss.reconstruction, loss.supcon, loss.msn must be enabled")
        return self


class HeadSection(StrictModel):
    """Sizes of the projection head shared by SupCon and MSN."""

    projection_hidden: int = Field(default=256, ge=1)
    projection_dim: int = Field(default=128, ge=1)


class PretrainConfig(StrictModel):
    """Everything one pretraining run needs besides the input files and the run folder.

    Attributes:
        encoder: architecture of the encoder (graph or transformer).
        heads: projection head sizes.
        data: schema, batching and standardisation.
        optim: optimiser and learning-rate schedule.
        masking: masking fraction of the online view.
        ema: target momentum schedule.
        loss: switches and weights of the loss terms.
        epochs: passes of ``steps_per_epoch`` steps.
        seed: seed of every random generator; CPU runs with the same seed are identical.
        precision: ``"bf16"`` runs forward passes under bfloat16 autocast, ``"fp32"`` does not.
            On one CPU thread ``benchmarks/bench_pretrain.py`` measured no gain for the graph
            encoder and about 0.6x the fp32 rate for the transformer, so fp32 is the default.
        device: ``"auto"`` takes the process's GPU when there is one, else the CPU.
        compile: wrap the encoder in ``torch.compile``.
        log_every: steps between per-step records in ``metrics.jsonl``.
        distributed_backend: ``"auto"`` picks NCCL on GPUs and gloo on CPUs under ``torchrun``.
    """

    encoder: EncoderConfig = EncoderConfig()
    heads: HeadSection = HeadSection()
    data: DataSection = DataSection()
    optim: OptimSection = OptimSection()
    masking: MaskingSection = MaskingSection()
    ema: EMASection = EMASection()
    loss: LossSection = LossSection()
    epochs: int = Field(default=10, ge=1)
    seed: int = 0
    precision: Precision = "fp32"
    device: DeviceChoice = "auto"
    compile: bool = False
    log_every: int = Field(default=10, ge=1)
    distributed_backend: Literal["auto", "gloo", "nccl"] = "auto"

    @model_validator(mode="after")
    def _check_msn_temperatures(self) -> "PretrainConfig":
        msn = self.loss.msn
        if msn.enabled and msn.target_temperature >= msn.temperature:
            raise ValueError(
                f"loss.msn.target_temperature must be below loss.msn.temperature (got {msn.target_temperature} >= {msn.temperature})"
            )
        return self
