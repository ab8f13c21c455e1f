"""Configuration of the side-by-side encoder benchmark: :class:`BenchConfig` and its sizes.

``configs/bench.yaml`` is its serialisation. One file contains two sizes: ``default`` (sized for a
2-core CPU in under an hour, an estimate until a run records it) and ``tiny`` (the configuration
CI runs end to end). ``--scale`` multiplies the event counts of the chosen size.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pmse_graph.config import StrictModel
from pmse_graph.models import EncoderConfig

EncoderName = Literal["graph", "transformer", "transformer_pair_bias"]
ENCODER_NAMES: tuple[str, ...] = ("graph", "transformer", "transformer_pair_bias")


class SizeSection(StrictModel):
    """Event counts, training budget and timing repeats of one benchmark size."""

    pretrain_events: int = Field(ge=100, description="events generated for pretraining (its train and val splits)")
    eval_events: int = Field(ge=100, description="events generated for the downstream tasks, from another seed")
    epochs: int = Field(ge=1, description="pretraining epochs, the same for every encoder")
    batch_size: int = Field(ge=2, description="pretraining events per optimiser step")
    warmup_steps: int = Field(ge=0, description="learning-rate warm-up steps of pretraining")
    finetune_epochs: int = Field(ge=1, description="epochs of fine-tuning and of training from scratch")
    k_values: list[int] = Field(min_length=1, description="k-means cluster counts")
    top: int = Field(ge=2, description="number of largest decay-tree classes in the classification task")
    timing_batch: int = Field(ge=1, description="events per batch in the throughput measurement")
    timing_repeats: int = Field(ge=1, description="timed repeats; the median is reported")
    matmul_size: int = Field(ge=64, description="side of the square fp32 matrices of the matmul peak measurement")
    confusion_pairs: int = Field(ge=1, description="class pairs listed per confusion kind")


class BenchConfig(StrictModel):
    """The whole benchmark: seeds, encoders, pretraining base config and the two sizes.

    Attributes:
        seed: seed of the pretraining events; the evaluation events use ``seed + 1``. Every
            encoder trains, fine-tunes and is timed with the same seeds.
        pretrain_config: shipped pretraining config (name in ``configs/``) or a path; its losses,
            optimiser and masking are used for every encoder.
        encoder: the graph encoder; the two transformers get the width that matches its
            parameter count.
        encoders: encoders to compare.
        sizes: ``default`` and ``tiny``.
    """

    seed: int = Field(default=7, ge=0, le=2**31 - 2)
    pretrain_config: str = "pretrain_demo.yaml"
    encoder: EncoderConfig = EncoderConfig()
    encoders: list[EncoderName] = Field(default_factory=lambda: list(ENCODER_NAMES), min_length=1)
    sizes: dict[Literal["default", "tiny"], SizeSection]

    def size(self, *, tiny: bool, scale: float = 1.0) -> SizeSection:
        """Return the chosen size with its event counts multiplied by ``scale``."""
        from pmse_graph.errors import ConfigError

        name = "tiny" if tiny else "default"
        if name not in self.sizes:
            raise ConfigError(f"The benchmark config has no 'sizes.{name}' section; add it")
        if not scale > 0:
            raise ConfigError(f"Expected --scale > 0 (got {scale})")
        base = self.sizes[name]
        return base.model_copy(update={
            "pretrain_events": max(100, round(base.pretrain_events * scale)),
            "eval_events": max(100, round(base.eval_events * scale)),
        })
