"""AdamW for pretraining, with weight decay chosen by module type: :func:`build_adamw`.

Decoupled weight decay pulls every decayed weight towards zero. That suits the matrices of
linear layers and prototypes, but not these parameters, which :func:`split_weight_decay` exempts:

* biases (a parameter named ``bias`` on its own module),
* every parameter of a normalisation module (``nn.LayerNorm`` and the other torch norms, and
  :class:`~pmse_graph.models.layers.conditional_norm.ConditionalLayerNorm`, whose linear map
  predicts the scale and shift),
* look-up tables of ``nn.Embedding`` (category and count embeddings),
* learned tokens that stand in for input: the parameters a module class lists in its
  ``no_weight_decay`` class attribute (mask tokens, the edge-mask and self-loop embeddings,
  the CLS token).

The decision uses module types, never substrings of parameter names, so an MLP that happens to
sit in an attribute called ``node_embedding`` keeps its weight decay.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pmse_graph.models.layers.conditional_norm import ConditionalLayerNorm

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.modules.batchnorm._NormBase,
    ConditionalLayerNorm,
)
"""Module types whose parameters (and those of their children) are never decayed."""


def split_weight_decay(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split the trainable parameters of ``model`` into ``(decayed, exempt)`` lists.

    Each parameter appears once, in ``model.named_parameters()`` order, even when shared.
    """
    exempt_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.Embedding, *NORM_TYPES)):
            exempt_ids.update(id(parameter) for parameter in module.parameters())
            continue
        tokens = set(getattr(type(module), "no_weight_decay", ()))
        for name, parameter in module.named_parameters(recurse=False):
            if name == "bias" or name in tokens:
                exempt_ids.add(id(parameter))

    decay: list[nn.Parameter] = []
    exempt: list[nn.Parameter] = []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (exempt if id(parameter) in exempt_ids else decay).append(parameter)
    return decay, exempt


def build_adamw(model: nn.Module, *, lr: float, weight_decay: float, betas: Sequence[float]) -> torch.optim.AdamW:
    """Return AdamW over ``model`` with ``weight_decay`` on the decayed group and 0 on the exempt one.

    The decayed group comes first, so a checkpoint's optimiser state keeps its group order.
    """
    decay, exempt = split_weight_decay(model)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": exempt, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))
