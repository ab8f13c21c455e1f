"""Masked-Siamese pretraining: masking, EMA target, losses, class-balanced batches, trainer.

:func:`run_pretraining` is what ``pmse-graph pretrain`` calls; :class:`PretrainConfig` is its
configuration and :class:`Trainer` the loop it runs.
"""

from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.run import build_trainer, run_pretraining
from pmse_graph.pretraining.trainer import FitResult, Trainer, TrainingDivergedError

__all__ = ["FitResult", "PretrainConfig", "Trainer", "TrainingDivergedError", "build_trainer", "run_pretraining"]
