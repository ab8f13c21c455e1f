"""Self-supervised prototype loss of Masked Siamese Networks (MSN).

Follows Assran et al., "Masked Siamese Networks for Label-Efficient Learning" (ECCV 2022).
Both views are assigned soft labels over ``K`` learnable prototypes by a softmax of cosine
similarities. The target view's assignment is sharpened (a lower temperature), detached, and
serves as the label for the masked view:

    loss = mean_i H(q_i, p_i) - lambda * H(mean_i p_i)

``H(q, p)`` is the cross-entropy, ``p`` the masked view's assignment at temperature ``T``,
``q`` the target's at ``T_target < T``. The second term is the mean-entropy regulariser
(ME-MAX): it rewards using many prototypes across the batch and so prevents collapse onto one.
No labels are needed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmse_graph.errors import ConfigError


class MSNResult(NamedTuple):
    """Loss value and diagnostics of one MSN evaluation."""

    loss: Tensor
    cross_entropy: Tensor
    mean_entropy: Tensor
    target_entropy: Tensor


def msn_loss(
    anchor: Tensor,
    target: Tensor,
    prototypes: Tensor,
    *,
    temperature: float = 0.1,
    target_temperature: float = 0.025,
    mean_entropy_weight: float = 1.0,
) -> MSNResult:
    """Compute the MSN loss between the masked view and the target view.

    Args:
        anchor: projected embeddings of the masked (online) view, shape (num_graphs, D).
        target: projected embeddings of the unmasked (target) view, shape (num_graphs, D);
            no gradient flows into it.
        prototypes: learnable prototypes, shape (K, D).
        temperature: softmax temperature of the masked view. Default 0.1.
        target_temperature: sharpening temperature of the target view, below ``temperature``.
            Default 0.025 (the MSN paper's ratio of 4).
        mean_entropy_weight: weight ``lambda`` of the mean-entropy regulariser. Default 1.

    Returns:
        :class:`MSNResult` with the total loss and its two terms, plus the mean entropy of the
        target assignments (a collapse diagnostic: near 0 means one-hot targets).

    Shapes:
        anchor: (num_graphs, D), target: (num_graphs, D), prototypes: (K, D) -> loss: ()
    """
    if temperature <= 0 or target_temperature <= 0:
        raise ConfigError(f"MSN temperatures must be > 0 (got {temperature} and {target_temperature})")

    # 1. cosine similarity of each view to every prototype, in fp32
    prototypes = F.normalize(prototypes.float(), dim=-1)
    anchor_logits = F.normalize(anchor.float(), dim=-1) @ prototypes.T  # (B, K)
    with torch.no_grad():
        target_logits = F.normalize(target.detach().float(), dim=-1) @ prototypes.T

    # 2. soft assignments: the target sharpened by its lower temperature
    anchor_log_probs = torch.log_softmax(anchor_logits / temperature, dim=-1)
    target_probs = torch.softmax(target_logits / target_temperature, dim=-1)

    # 3. cross-entropy of the masked view against the target assignment
    cross_entropy = -(target_probs * anchor_log_probs).sum(dim=-1).mean()

    # 4. mean-entropy regulariser on the batch-averaged masked-view assignment
    mean_probs = anchor_log_probs.exp().mean(dim=0)
    mean_entropy = -(mean_probs * torch.log(mean_probs.clamp_min(1e-12))).sum()
    target_entropy = -(target_probs * torch.log(target_probs.clamp_min(1e-12))).sum(dim=-1).mean()

    loss = cross_entropy - mean_entropy_weight * mean_entropy
    return MSNResult(loss=loss, cross_entropy=cross_entropy, mean_entropy=mean_entropy.detach(), target_entropy=target_entropy)


class MSNLoss(nn.Module):
    """Learnable prototypes plus the MSN loss.

    Args:
        dim: size D of the projected embeddings.
        num_prototypes: number K of prototypes. Default 256.
        temperature: temperature of the masked view. Default 0.1.
        target_temperature: sharpening temperature of the target view. Default 0.025.
        mean_entropy_weight: weight of the mean-entropy regulariser. Default 1.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_prototypes: int = 256,
        temperature: float = 0.1,
        target_temperature: float = 0.025,
        mean_entropy_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if target_temperature >= temperature:
            raise ConfigError(
                f"MSN target_temperature must be below temperature to sharpen the targets (got {target_temperature} >= {temperature})"
            )
        self.prototypes = nn.Parameter(torch.empty(num_prototypes, dim))
        self.temperature = temperature
        self.target_temperature = target_temperature
        self.mean_entropy_weight = mean_entropy_weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw prototypes uniformly on the unit sphere."""
        nn.init.normal_(self.prototypes)
        with torch.no_grad():
            self.prototypes.copy_(F.normalize(self.prototypes, dim=-1))

    @property
    def max_entropy(self) -> float:
        """Entropy of a uniform assignment, log K: the ceiling of the mean-entropy term."""
        return math.log(self.prototypes.shape[0])

    def forward(self, anchor: Tensor, target: Tensor) -> MSNResult:
        """Return the MSN loss of ``anchor`` (num_graphs, D) against ``target`` (num_graphs, D)."""
        return msn_loss(
            anchor,
            target,
            self.prototypes,
            temperature=self.temperature,
            target_temperature=self.target_temperature,
            mean_entropy_weight=self.mean_entropy_weight,
        )
