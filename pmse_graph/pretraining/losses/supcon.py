"""Supervised contrastive loss on event embeddings (SupCon).

Follows Khosla et al., "Supervised Contrastive Learning" (NeurIPS 2020), the "L_out" form:
for an anchor ``i`` with positives ``P(i)`` (other events of the same class) and contrast set
``A(i)`` (every other valid event),

    loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a in A(i)} w_ia exp(z_i.z_a / T) )

with unit-normalised ``z`` and temperature ``T``. Events with an unknown label (-1) take no part.
Anchors without a positive are excluded from the mean. A batch where no anchor has a positive
returns a zero loss that stays connected to the graph, so DDP still finds every parameter used,
and reports ``num_anchors = 0`` instead of NaN.

The optional hard-negative weighting follows Robinson et al., "Contrastive Learning with Hard
Negative Samples" (ICLR 2021): each negative's term in the denominator is weighted by
``w_ia = |N(i)| * softmax_a(beta * z_i.z_a)`` over the negatives, so negatives close to the
anchor count more; positives keep weight 1 and ``beta = 0`` recovers plain SupCon.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmse_graph.errors import ConfigError


class SupConResult(NamedTuple):
    """Loss value and diagnostics of one SupCon evaluation."""

    loss: Tensor
    num_anchors: int
    mean_positives: float


def supcon_loss(
    features: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    hard_negative_beta: float = 0.0,
) -> SupConResult:
    """Compute the SupCon loss of a batch of embeddings.

    Args:
        features: event embeddings (not necessarily normalised), shape (num_graphs, D).
        labels: class id per event, shape (num_graphs,), long; -1 marks an unknown class.
        temperature: softmax temperature T > 0. Default 0.1.
        hard_negative_beta: concentration ``beta >= 0`` of the hard-negative weights; 0 (the
            default) turns the weighting off.

    Returns:
        :class:`SupConResult`: the mean loss over anchors with at least one positive (a
        graph-connected zero when there are none), the number of such anchors and their mean
        number of positives.

    Shapes:
        features: (num_graphs, D), labels: (num_graphs,) -> loss: ()
    """
    if temperature <= 0:
        raise ConfigError(f"SupCon temperature must be > 0 (got {temperature})")
    if hard_negative_beta < 0:
        raise ConfigError(f"SupCon hard_negative_beta must be >= 0 (got {hard_negative_beta})")

    # 1. keep events with a known label and compute the cosine similarities in fp32
    known = labels >= 0
    z = F.normalize(features[known].float(), dim=-1)
    y = labels[known]
    n = z.shape[0]
    similarity = z @ z.T  # (n, n)
    logits = similarity / temperature

    # 2. positives share the label, the contrast set is every other event
    not_self = ~torch.eye(n, dtype=torch.bool, device=z.device)
    positive = (y[:, None] == y[None, :]) & not_self
    negative = (y[:, None] != y[None, :])
    num_positives = positive.sum(dim=1)
    anchors = num_positives > 0
    num_anchors = int(anchors.sum())
    if num_anchors == 0:
        return SupConResult(loss=features.sum() * 0.0, num_anchors=0, mean_positives=0.0)

    # 3. denominator weights: 1 for positives, |N(i)| * softmax(beta * s) over negatives
    weights = not_self.to(logits.dtype)
    if hard_negative_beta > 0:
        with torch.no_grad():
            hardness = (hard_negative_beta * similarity).masked_fill(~negative, float("-inf"))
            num_negatives = negative.sum(dim=1, keepdim=True).to(logits.dtype)
            negative_weights = torch.softmax(hardness, dim=1).nan_to_num(0.0) * num_negatives
            weights = torch.where(negative, negative_weights, weights)

    # 4. log-probability of each pair against the weighted contrast set, shifted by the row maximum
    # over the contrast set only. The anchor's own logit 1/T is the largest of its row, so a shift
    # by it would underflow every other exp() to 0 at small T and give log(0), then NaN.
    row_max = logits.masked_fill(~not_self, float("-inf")).max(dim=1, keepdim=True).values.detach()
    shifted = logits - row_max
    # the self term is excluded by exp(-inf) = 0 rather than by its weight 0, since exp(1/T - max)
    # overflows to inf at small T and 0 * inf is NaN
    contrast = torch.exp(shifted.masked_fill(~not_self, float("-inf")))
    denominator = (weights * contrast).sum(dim=1, keepdim=True)
    log_prob = shifted - torch.log(denominator)

    # 5. mean over each anchor's positives, then over anchors with a positive
    per_anchor = -(log_prob * positive).sum(dim=1)[anchors] / num_positives[anchors]
    return SupConResult(
        loss=per_anchor.mean(),
        num_anchors=num_anchors,
        mean_positives=float(num_positives[anchors].float().mean()),
    )


class SupConLoss(nn.Module):
    """Module form of :func:`supcon_loss` holding the temperature and hard-negative setting.

    Args:
        temperature: softmax temperature T > 0. Default 0.1.
        hard_negative_beta: hard-negative concentration, 0 for plain SupCon. Default 0.
    """

    def __init__(self, *, temperature: float = 0.1, hard_negative_beta: float = 0.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.hard_negative_beta = hard_negative_beta

    def forward(self, features: Tensor, labels: Tensor) -> SupConResult:
        """Return the SupCon loss of ``features`` (num_graphs, D) with ``labels`` (num_graphs,)."""
        return supcon_loss(features, labels, temperature=self.temperature, hard_negative_beta=self.hard_negative_beta)
