"""Learning-rate schedule: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math


def warmup_cosine_lr(*, step: int, total_steps: int, base_lr: float, warmup_steps: int, min_lr_ratio: float) -> float:
    """Return the learning rate for optimiser step ``step`` (0-based).

    The rate rises linearly to ``base_lr`` over ``warmup_steps`` steps (reaching it at step
    ``warmup_steps - 1``), then falls on a half cosine to ``min_lr_ratio * base_lr`` at the last
    step, ``total_steps - 1``.

    Args:
        step: optimiser steps done so far.
        total_steps: steps of the whole run.
        base_lr: peak learning rate.
        warmup_steps: warm-up length; 0 starts at the peak.
        min_lr_ratio: final rate as a fraction of the peak.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    floor = base_lr * min_lr_ratio
    decay_steps = max(total_steps - warmup_steps - 1, 1)
    progress = min(max((step - warmup_steps) / decay_steps, 0.0), 1.0)
    return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
