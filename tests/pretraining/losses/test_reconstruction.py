"""Tests of the per-group reconstruction loss."""

from __future__ import annotations

import pytest
import torch

from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss, complete_groups, reconstruction_loss

GROUPS = {"kinematics": [0, 1], "emc": [2, 3]}


def test_complete_groups_adds_other_and_checks_range():
    assert complete_groups(GROUPS, 5) == {"kinematics": [0, 1], "emc": [2, 3], "other": [4]}
    with pytest.raises(ConfigError, match="column 7"):
        complete_groups({"bad": [7]}, 5)


def test_reconstruction_terms_hand_computed():
    target_x = torch.zeros(2, 4)
    continuous = torch.tensor([[1.0, 1.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    target_cat = torch.tensor([[0], [1]])
    logits = [torch.zeros(2, 2)]
    result = reconstruction_loss(continuous, logits, target_x=target_x, target_cat=target_cat, groups=GROUPS, categorical_names=["charge"])
    assert float(result.terms["cont/kinematics"]) == pytest.approx(1.0)
    assert float(result.terms["cont/emc"]) == pytest.approx(1.0)  # 4 / 4 elements
    assert float(result.terms["cat/charge"]) == pytest.approx(torch.log(torch.tensor(2.0)).item())
    expected = (1.0 + 1.0 + torch.log(torch.tensor(2.0)).item()) / 3
    assert float(result.loss) == pytest.approx(expected, rel=1e-6)


def test_reconstruction_skips_fill_values_of_absent_group():
    target_x = torch.zeros(2, 4)
    continuous = torch.zeros(2, 4)
    continuous[1, 2:] = 1e6  # a wild prediction where the EMC group is absent
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[1, 2:] = False
    loss = ReconstructionLoss(groups=GROUPS, categorical_names=[])
    result = loss(continuous, [], target_x=target_x, target_cat=torch.zeros(2, 0, dtype=torch.long), valid=valid)
    assert float(result.terms["cont/emc"]) == 0.0
    assert float(result.loss) == 0.0


def test_reconstruction_group_absent_everywhere_is_left_out():
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[:, 2:] = False
    continuous = torch.ones(3, 4, requires_grad=True)
    result = reconstruction_loss(
        continuous, [], target_x=torch.zeros(3, 4), target_cat=torch.zeros(3, 0, dtype=torch.long), groups=GROUPS, categorical_names=[], valid=valid
    )
    assert float(result.loss) == pytest.approx(1.0)
    assert float(result.terms["cont/emc"]) == 0.0
    result.loss.backward()
    assert continuous.grad[:, 2:].abs().sum() == 0


def test_reconstruction_no_masked_nodes_gives_connected_zero():
    continuous = torch.zeros(0, 4, requires_grad=True)
    logits = [torch.zeros(0, 3, requires_grad=True)]
    result = reconstruction_loss(
        continuous, logits, target_x=torch.zeros(0, 4), target_cat=torch.zeros(0, 1, dtype=torch.long), groups=GROUPS, categorical_names=["pid"]
    )
    assert float(result.loss) == 0.0
    result.loss.backward()
    assert continuous.grad is not None


def test_reconstruction_rejects_mismatched_categoricals():
    with pytest.raises(ValueError, match="categorical"):
        reconstruction_loss(
            torch.zeros(1, 4), [], target_x=torch.zeros(1, 4), target_cat=torch.zeros(1, 1, dtype=torch.long), groups=GROUPS, categorical_names=["pid"]
        )
