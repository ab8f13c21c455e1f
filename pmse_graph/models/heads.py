"""Heads on top of an encoder: projection, reconstruction decoder, classification.

:class:`ProjectionHead` maps event embeddings into the space of the contrastive
and prototype losses. :class:`ReconstructionDecoder` predicts each particle's
input features from its node state and its event's embedding, for the masked
reconstruction task. :class:`ClassificationHead` maps event embeddings to class
logits for fine-tuning and probing.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from pmse_graph.models.spec import ModelInputSpec


def count_parameters(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Count the parameters of ``module`` (only those with ``requires_grad`` by default)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class ProjectionHead(nn.Module):
    """MLP projector: Linear, LayerNorm, GELU, Linear.

    Args:
        in_dim: encoder embedding size.
        hidden: hidden size.
        out_dim: projected size.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        """Shapes: x (num_graphs, in_dim) -> (num_graphs, out_dim)."""
        return self.net(x)


class ReconstructionOutput(NamedTuple):
    """Per-node predictions of the input features.

    Shapes:
        continuous: (num_nodes, F), in the standardised units of ``batch.x``.
        categorical_logits: one (num_nodes, cardinality) tensor per column of ``batch.x_cat``.
    """

    continuous: Tensor
    categorical_logits: list[Tensor]


class ReconstructionDecoder(nn.Module):
    """Predict each particle's features from its node state joined to its event embedding.

    The event embedding gives a masked particle the context of the whole event, for
    example the energy and momentum the other particles leave unbalanced.

    Args:
        embed_dim: encoder output size D.
        spec: input sizes (continuous columns and categorical cardinalities).
        hidden: hidden size, default ``embed_dim``.
    """

    def __init__(self, embed_dim: int, spec: ModelInputSpec, *, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or embed_dim
        self.trunk = nn.Sequential(nn.Linear(2 * embed_dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.continuous = nn.Linear(hidden, spec.num_node_features)
        self.categorical = nn.ModuleList(nn.Linear(hidden, cardinality) for cardinality in spec.categorical_cardinalities)

    def forward(self, node_states: Tensor, event_embedding: Tensor, node_graph: Tensor) -> ReconstructionOutput:
        """Predict features for every node. The loss selects the masked ones.

        Args:
            node_states: encoder node states.
            event_embedding: encoder event embeddings.
            node_graph: event of each node (``batch.batch``).

        Shapes:
            node_states: (num_nodes, D); event_embedding: (num_graphs, D); node_graph: (num_nodes,).
        """
        hidden = self.trunk(torch.cat([node_states, event_embedding[node_graph]], dim=-1))
        return ReconstructionOutput(
            continuous=self.continuous(hidden), categorical_logits=[head(hidden) for head in self.categorical]
        )


class ClassificationHead(nn.Module):
    """LayerNorm and a linear classifier, with an optional hidden layer.

    Args:
        embed_dim: encoder embedding size.
        num_classes: number of classes.
        hidden: hidden size; ``None`` (default) gives a linear probe.
        dropout: dropout before the last layer, default 0.
    """

    def __init__(self, embed_dim: int, num_classes: int, *, hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LayerNorm(embed_dim)]
        if hidden is not None:
            layers += [nn.Linear(embed_dim, hidden), nn.GELU()]
        layers += [nn.Dropout(dropout), nn.Linear(hidden or embed_dim, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Shapes: x (num_graphs, embed_dim) -> (num_graphs, num_classes) logits."""
        return self.net(x)
