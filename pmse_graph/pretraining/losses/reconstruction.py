"""Masked-particle reconstruction loss, reported per feature group.

The decoder predicts, for every masked particle, its standardised continuous features and a
logit vector per categorical feature (charge, PID type). The loss has one term per feature group
of the schema (kinematics, PID, EMC, MUC, ...) and one per categorical feature. The total is the
mean of the terms, so a group with many columns does not drown the others.

A group that a particle does not have (a neutral shower has no MDC track, a track without a
matched shower has no EMC values) contains fill values in ``x``; the caller passes a ``valid``
matrix that is False there, and those elements are left out of the regression. A group with no
valid element in the batch contributes a zero term and is left out of the total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from pmse_graph.errors import ConfigError


class ReconstructionResult(NamedTuple):
    """Total loss and one detached term per feature group (``cont/<group>``) and categorical feature (``cat/<name>``)."""

    loss: Tensor
    terms: dict[str, Tensor]


def complete_groups(groups: Mapping[str, Sequence[int]], num_features: int) -> dict[str, list[int]]:
    """Return ``groups`` plus an ``other`` group holding every column no group names.

    Raises:
        ConfigError: when a group names a column outside ``[0, num_features)``.
    """
    completed = {name: list(columns) for name, columns in groups.items()}
    covered: set[int] = set()
    for name, columns in completed.items():
        for column in columns:
            if not 0 <= column < num_features:
                raise ConfigError(f"Feature group '{name}' names column {column}, outside the {num_features} node features")
        covered.update(columns)
    leftover = [column for column in range(num_features) if column not in covered]
    if leftover:
        completed.setdefault("other", []).extend(leftover)
    return completed


def reconstruction_loss(
    continuous: Tensor,
    logits: Sequence[Tensor],
    *,
    target_x: Tensor,
    target_cat: Tensor,
    groups: Mapping[str, Sequence[int]],
    categorical_names: Sequence[str],
    valid: Tensor | None = None,
) -> ReconstructionResult:
    """Compute the reconstruction loss of the masked particles.

    Args:
        continuous: predicted standardised features of the masked particles, shape (M, F).
        logits: one tensor (M, cardinality) per categorical feature.
        target_x: true standardised features, shape (M, F).
        target_cat: true categorical indices, shape (M, C), long.
        groups: feature group name -> columns of ``x``, as ``schema.feature_groups``; columns no
            group names are reported as group ``other``.
        categorical_names: names of the C categorical features, used in the term names.
        valid: bool (M, F), False where a value is a fill value of an absent group; ``None``
            regresses every element.

    Returns:
        :class:`ReconstructionResult`: the mean of the active terms (squared error per group,
        cross-entropy per categorical feature) and every term, detached, for logging.

    Shapes:
        continuous, target_x, valid: (M, F); target_cat: (M, C); logits[c]: (M, K_c) -> loss: ()
    """
    if len(logits) != target_cat.shape[1] or len(categorical_names) != target_cat.shape[1]:
        raise ValueError(
            f"Expected one logit tensor and one name per categorical feature (got {len(logits)} logits, "
            f"{len(categorical_names)} names, {target_cat.shape[1]} categorical columns)"
        )
    num_features = target_x.shape[1]
    if valid is None:
        valid = torch.ones_like(target_x, dtype=torch.bool)

    active: list[Tensor] = []
    terms: dict[str, Tensor] = {}
    # keeps the total connected to every output, so an empty batch still back-propagates zeros
    anchor = continuous.sum() * 0.0 + sum((item.sum() * 0.0 for item in logits), torch.zeros((), device=continuous.device))

    # 1. squared error per feature group over its valid elements
    squared_error = (continuous.float() - target_x.float()).pow(2)
    for name, columns in complete_groups(groups, num_features).items():
        index = torch.as_tensor(columns, dtype=torch.long, device=continuous.device)
        group_valid = valid.index_select(1, index)
        count = int(group_valid.sum())
        if count == 0:
            terms[f"cont/{name}"] = torch.zeros((), device=continuous.device)
            continue
        term = (squared_error.index_select(1, index) * group_valid).sum() / count
        active.append(term)
        terms[f"cont/{name}"] = term.detach()

    # 2. cross-entropy per categorical feature
    for column, (name, feature_logits) in enumerate(zip(categorical_names, logits, strict=True)):
        if feature_logits.shape[0] == 0:
            terms[f"cat/{name}"] = torch.zeros((), device=continuous.device)
            continue
        term = F.cross_entropy(feature_logits.float(), target_cat[:, column])
        active.append(term)
        terms[f"cat/{name}"] = term.detach()

    if not active:
        return ReconstructionResult(loss=anchor, terms=terms)
    return ReconstructionResult(loss=torch.stack(active).mean() + anchor, terms=terms)


class ReconstructionLoss:
    """:func:`reconstruction_loss` bound to one schema's feature groups and categorical names.

    Args:
        groups: feature group name -> columns of ``x``.
        categorical_names: names of the categorical features, in ``x_cat`` order.
    """

    def __init__(self, *, groups: Mapping[str, Sequence[int]], categorical_names: Sequence[str]) -> None:
        self.groups = {name: list(columns) for name, columns in groups.items()}
        self.categorical_names = list(categorical_names)

    def __call__(
        self,
        continuous: Tensor,
        logits: Sequence[Tensor],
        *,
        target_x: Tensor,
        target_cat: Tensor,
        valid: Tensor | None = None,
    ) -> ReconstructionResult:
        """Return the loss of ``continuous`` (M, F) and ``logits`` against the masked particles' features."""
        return reconstruction_loss(
            continuous,
            logits,
            target_x=target_x,
            target_cat=target_cat,
            groups=self.groups,
            categorical_names=self.categorical_names,
            valid=valid,
        )
