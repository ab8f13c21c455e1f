"""Tests of the EMA target update and its momentum schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.ema import cosine_momentum, ema_update_, make_target


def test_cosine_momentum_endpoints_and_monotone():
    values = [cosine_momentum(step=step, total_steps=11, start=0.996, end=1.0) for step in range(11)]
    assert values[0] == pytest.approx(0.996)
    assert values[-1] == pytest.approx(1.0)
    assert values[5] == pytest.approx(0.998)
    assert all(later >= earlier for earlier, later in zip(values, values[1:]))
    assert cosine_momentum(step=0, total_steps=1, start=0.9, end=1.0) == 1.0


def test_cosine_momentum_rejects_out_of_range():
    with pytest.raises(ConfigError, match="momenta"):
        cosine_momentum(step=0, total_steps=10, start=1.2, end=1.0)


def test_ema_update_formula_and_buffers():
    online = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    target = make_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for parameter in online.parameters():
            parameter.add_(1.0)
        online[1].running_mean.fill_(2.0)
        online[1].num_batches_tracked.fill_(5)
    before = [p.clone() for p in target.parameters()]
    ema_update_(target, online, momentum=0.9)
    for old, new, source in zip(before, target.parameters(), online.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * source)
    assert torch.allclose(target[1].running_mean, torch.full((2,), 0.2))
    assert int(target[1].num_batches_tracked) == 5


def test_ema_momentum_one_freezes_and_zero_copies():
    online = nn.Linear(4, 4)
    target = make_target(online)
    with torch.no_grad():
        online.weight.mul_(3.0)
    frozen = target.weight.clone()
    ema_update_(target, online, momentum=1.0)
    assert torch.equal(target.weight, frozen)
    ema_update_(target, online, momentum=0.0)
    assert torch.equal(target.weight, online.weight)
    assert not math.isnan(float(target.weight.sum()))
