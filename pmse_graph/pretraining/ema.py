"""Exponential-moving-average target network and its momentum schedule.

The target branch of the Siamese pair (the unmasked view) is a copy of the online encoder and
projection head whose weights follow the online ones as an exponential moving average,
``target = m * target + (1 - m) * online``, and never receive gradients. As in BYOL and Masked
Siamese Networks, the momentum ``m`` rises from ``start`` to ``end`` along a half cosine over the
run, so the target moves quickly early on and freezes at the end.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from pmse_graph.errors import ConfigError


def cosine_momentum(*, step: int, total_steps: int, start: float, end: float) -> float:
    """Return the EMA momentum at ``step`` of ``total_steps``: ``start`` at 0, ``end`` at the last step.

    Args:
        step: optimiser steps done so far (0-based).
        total_steps: steps of the whole run; values <= 1 give ``end`` at once.
        start: momentum at the first step, in [0, 1].
        end: momentum at the last step, in [0, 1].
    """
    if not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0):
        raise ConfigError(f"EMA momenta must be in [0, 1] (got start={start}, end={end})")
    if total_steps <= 1:
        return end
    progress = min(max(step / (total_steps - 1), 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * progress) + 1.0) / 2.0


def make_target(online: nn.Module) -> nn.Module:
    """Return a frozen deep copy of ``online`` to serve as the EMA target."""
    target = copy.deepcopy(online)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, *, momentum: float) -> None:
    """Move ``target`` towards ``online`` in place: ``t = momentum * t + (1 - momentum) * o``.

    Floating-point buffers (for example running statistics) are averaged the same way; integer
    buffers are copied. Both modules must have the same structure.

    Args:
        target: the EMA copy, updated in place.
        online: the trained module.
        momentum: weight of the old target value, in [0, 1].
    """
    target_params = list(target.parameters())
    online_params = list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError(f"Expected target and online modules of the same structure (got {len(target_params)} and {len(online_params)} parameters)")
    if target_params:
        torch._foreach_mul_(target_params, momentum)
        torch._foreach_add_(target_params, [p.detach() for p in online_params], alpha=1.0 - momentum)

    for target_buffer, online_buffer in zip(target.buffers(), online.buffers(), strict=True):
        if target_buffer.is_floating_point():
            target_buffer.mul_(momentum).add_(online_buffer, alpha=1.0 - momentum)
        else:
            target_buffer.copy_(online_buffer)
