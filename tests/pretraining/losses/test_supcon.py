"""Tests of the SupCon loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.losses.supcon import SupConLoss, supcon_loss

# four unit vectors: east, north, west, south
POINTS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def test_supcon_hand_computed():
    # anchors 0 and 1 are positives of each other; anchor 2 has no positive and is excluded
    result = supcon_loss(POINTS[:3] * 5.0, torch.tensor([0, 0, 1]), temperature=1.0)
    anchor_0 = math.log(1.0 + math.exp(-1.0))  # positive at cos 0, negative at cos -1
    anchor_1 = math.log(2.0)  # positive and negative both at cos 0
    assert result.num_anchors == 2
    assert result.mean_positives == 1.0
    assert float(result.loss) == pytest.approx((anchor_0 + anchor_1) / 2, rel=1e-6)


def test_supcon_temperature_scales_logits():
    result = supcon_loss(POINTS[:3], torch.tensor([0, 0, 1]), temperature=0.5)
    anchor_0 = math.log(1.0 + math.exp(-2.0))
    anchor_1 = math.log(2.0)
    assert float(result.loss) == pytest.approx((anchor_0 + anchor_1) / 2, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.005, 1e-4])
@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_supcon_finite_at_small_temperature(temperature, beta):
    # the anchor's own similarity 1/T must not set the max shift, or every other exp() underflows
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(256, 128, generator=generator, requires_grad=True)
    labels = torch.randint(0, 40, (256,), generator=generator)

    result = supcon_loss(features, labels, temperature=temperature, hard_negative_beta=beta)
    result.loss.backward()

    assert torch.isfinite(result.loss)
    assert torch.isfinite(features.grad).all()


def test_supcon_small_temperature_hand_computed():
    # anchor 0: positive at cos 0, negative at cos -1; anchor 1: both at cos 0
    temperature = 0.005
    result = supcon_loss(POINTS[:3], torch.tensor([0, 0, 1]), temperature=temperature)
    anchor_0 = math.log1p(math.exp(-1.0 / temperature))
    anchor_1 = math.log(2.0)
    assert float(result.loss) == pytest.approx((anchor_0 + anchor_1) / 2, rel=1e-6)


def test_supcon_hard_negative_weights():
    beta = 2.0
    labels = torch.tensor([0, 0, 1, 2])
    result = supcon_loss(POINTS, labels, temperature=1.0, hard_negative_beta=beta)
    # anchor 0: positive 1 (cos 0), negatives 2 (cos -1) and 3 (cos 0)
    w2 = 2 * math.exp(-beta) / (math.exp(-beta) + 1.0)
    w3 = 2 * 1.0 / (math.exp(-beta) + 1.0)
    anchor_0 = -math.log(1.0 / (1.0 + w2 * math.exp(-1.0) + w3 * 1.0))
    # anchor 1: positive 0 (cos 0), negatives 2 (cos 0) and 3 (cos -1): the same by symmetry
    assert float(result.loss) == pytest.approx(anchor_0, rel=1e-6)
    plain = supcon_loss(POINTS, labels, temperature=1.0)
    assert float(result.loss) > float(plain.loss)


def test_supcon_without_positives_is_counted_zero():
    features = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.tensor([0, 1, 2, 3]), torch.tensor([-1, -1, -1, -1]), torch.tensor([5, -1, -1, 6])):
        result = supcon_loss(features, labels)
        assert result.num_anchors == 0
        assert float(result.loss) == 0.0
        result.loss.backward()
        assert torch.isfinite(features.grad).all()
        assert features.grad.abs().sum() == 0


def test_supcon_unknown_labels_ignored():
    features = torch.randn(5, 3)
    with_unknown = supcon_loss(features, torch.tensor([0, 0, -1, 1, 1]))
    without = supcon_loss(features[[0, 1, 3, 4]], torch.tensor([0, 0, 1, 1]))
    assert float(with_unknown.loss) == pytest.approx(float(without.loss), rel=1e-6)


def test_supcon_gradient_and_module():
    features = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4])
    result = SupConLoss(temperature=0.2, hard_negative_beta=1.0)(features, labels)
    result.loss.backward()
    assert result.num_anchors == 6
    assert torch.isfinite(features.grad).all()
    assert features.grad[:6].abs().sum() > 0


@pytest.mark.parametrize(("temperature", "beta"), [(0.0, 0.0), (0.1, -1.0)])
def test_supcon_rejects_bad_settings(temperature, beta):
    with pytest.raises(ConfigError):
        supcon_loss(POINTS, torch.tensor([0, 0, 1, 1]), temperature=temperature, hard_negative_beta=beta)
