"""Tests of the MSN prototype loss."""

from __future__ import annotations

import math

import pytest
import torch

from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.losses.msn import MSNLoss, msn_loss


def test_msn_hand_computed():
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    anchor = torch.tensor([[1.0, 0.0]])
    target = torch.tensor([[0.0, 2.0]])
    result = msn_loss(anchor, target, prototypes, temperature=1.0, target_temperature=0.5, mean_entropy_weight=0.5)
    # target logits (0, 1) / 0.5 -> q = softmax(0, 2); anchor logits (1, 0) -> p = softmax(1, 0)
    q = [1 / (1 + math.exp(2)), math.exp(2) / (1 + math.exp(2))]
    p = [math.exp(1) / (1 + math.exp(1)), 1 / (1 + math.exp(1))]
    cross_entropy = -(q[0] * math.log(p[0]) + q[1] * math.log(p[1]))
    mean_entropy = -(p[0] * math.log(p[0]) + p[1] * math.log(p[1]))
    assert float(result.cross_entropy) == pytest.approx(cross_entropy, rel=1e-6)
    assert float(result.mean_entropy) == pytest.approx(mean_entropy, rel=1e-6)
    assert float(result.loss) == pytest.approx(cross_entropy - 0.5 * mean_entropy, rel=1e-6)


def test_msn_gradient_reaches_anchor_and_prototypes_not_target():
    module = MSNLoss(dim=4, num_prototypes=6)
    anchor = torch.randn(5, 4, requires_grad=True)
    target = torch.randn(5, 4, requires_grad=True)
    result = module(anchor, target)
    result.loss.backward()
    assert torch.isfinite(result.loss)
    assert anchor.grad.abs().sum() > 0
    assert module.prototypes.grad.abs().sum() > 0
    assert target.grad is None
    assert float(result.mean_entropy) <= module.max_entropy + 1e-6


def test_msn_sharpening_lowers_target_entropy():
    prototypes = torch.randn(8, 4)
    anchor, target = torch.randn(16, 4), torch.randn(16, 4)
    soft = msn_loss(anchor, target, prototypes, temperature=0.1, target_temperature=0.1)
    sharp = msn_loss(anchor, target, prototypes, temperature=0.1, target_temperature=0.02)
    assert float(sharp.target_entropy) < float(soft.target_entropy)


def test_msn_rejects_unsharpened_target():
    with pytest.raises(ConfigError, match="target_temperature"):
        MSNLoss(dim=4, temperature=0.1, target_temperature=0.2)
