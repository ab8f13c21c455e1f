"""Input embeddings shared by both encoders, with the learned mask tokens.

:class:`NodeEmbedding` maps a particle's continuous and categorical features to
a node state and replaces masked particles by a learned mask token.
:class:`EdgeEmbedding` maps pair features to an edge embedding. Every edge that
touches a masked particle gets a learned edge-mask embedding instead, because
pair features such as the pair mass would otherwise reveal the masked particle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pmse_graph.models.spec import ModelInputSpec
from pmse_graph.physics.kinematics import EPS

PAIR_LOG_FLOOR = math.log(EPS)
"""log of ``pmse_graph.physics.kinematics.EPS``: the value of log_m2, log_kt and log_z for a
zero-mass, collinear or zero-momentum pair (about -18.4)."""

EDGE_FEATURE_SCALES: dict[str, float] = {
    # Logarithms clamped at log(EPS), divided by |log(EPS)| / 2 so that the floor lands at -2.
    # In J/psi decays m^2 <= 3.1^2 GeV^2, so log m^2 <= 2.3 and every value lies in about [-2, 0.3].
    "log_m2": -PAIR_LOG_FLOOR / 2,
    "log_kt": -PAIR_LOG_FLOOR / 2,
    "log_z": -PAIR_LOG_FLOOR / 2,
    # cos and sin of the opening angle lie in [-1, 1], the shower flag in {0, 1}
    "cos_angle": 1.0,
    "sin_angle": 1.0,
    "both_showers": 1.0,
    # log(1 + distance) between the two EMC showers, between 0 and a few units
    "shower_log_distance": 2.0,
    # EMC time difference in 50 ns units. Good photons lie in 0-14 (docs/ntuple_format.md), so
    # good-photon pairs map into [-1, 1], and pairs with other showers can lie further out.
    "shower_time_difference": 14.0,
}
"""Fixed divisor of each pair feature, by the schema's edge feature name (unknown names: 1)."""


def edge_input_scale(feature_names: Sequence[str], num_edge_features: int) -> Tensor:
    """Return the factor (1 / divisor) of each ``edge_attr`` column; ones when no names are given.

    Shapes:
        output: (num_edge_features,).
    """
    if not feature_names:
        return torch.ones(num_edge_features)
    return torch.tensor([1.0 / EDGE_FEATURE_SCALES.get(name, 1.0) for name in feature_names], dtype=torch.float32)


class NodeEmbedding(nn.Module):
    """Embed particles: categorical look-ups joined to the continuous features, then an MLP.

    Args:
        spec: input sizes (continuous columns and categorical cardinalities).
        out_dim: node state size D.
        categorical_width: embedding size of each categorical feature.
    """

    no_weight_decay = ("mask_token",)
    """Learned tokens exempt from weight decay (see :mod:`pmse_graph.pretraining.optimizer`)."""

    def __init__(self, spec: ModelInputSpec, *, out_dim: int, categorical_width: int) -> None:
        super().__init__()
        self.categorical = nn.ModuleList(nn.Embedding(cardinality, categorical_width) for cardinality in spec.categorical_cardinalities)
        in_dim = spec.num_node_features + spec.num_categorical * categorical_width
        self.mlp = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.mask_token = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)
        for table in self.categorical:
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, x: Tensor, x_cat: Tensor, node_mask: Tensor | None = None) -> Tensor:
        """Embed every particle, replacing masked ones by the mask token.

        Args:
            x: standardised continuous features.
            x_cat: categorical features, each column in ``0..cardinality-1``.
            node_mask: True = masked; ``None`` masks nothing.

        Shapes:
            x: (num_nodes, F); x_cat: (num_nodes, C); node_mask: (num_nodes,).
            output: (num_nodes, D).
        """
        parts = [x] + [table(x_cat[:, column]) for column, table in enumerate(self.categorical)]
        states = self.mlp(torch.cat(parts, dim=-1))
        if node_mask is not None:
            states = torch.where(node_mask.unsqueeze(-1), self.mask_token.to(states.dtype), states)
        return states


class EdgeEmbedding(nn.Module):
    """Embed pair features, mask edges of masked particles, and optionally add self-loops.

    NOTE: the pair features reach the model as the data layer computes them, not standardised
    (unlike the node features). Their ranges differ a lot: the logarithms log_m2, log_kt and
    log_z go down to their clamp floor log(1e-8) = -18.4 for collinear or massless pairs,
    cos/sin and the shower flag stay in [-1, 1], and the EMC shower time difference is in 50 ns
    units (good photons within +-14, other showers further out). So each column is first
    multiplied by a fixed factor chosen by its name (:data:`EDGE_FEATURE_SCALES`). That brings
    every known column to O(1) without depending on the training data. The factors are a
    buffer in the state dict, so a loaded checkpoint uses the factors it was trained with.

    Args:
        num_edge_features: E, columns of ``edge_attr``.
        out_dim: edge embedding size.
        feature_names: name of each ``edge_attr`` column (the spec's ``edge_feature_names``);
            empty leaves the columns unscaled.
    """

    no_weight_decay = ("mask_embedding", "self_loop_embedding")
    """Learned tokens exempt from weight decay (see :mod:`pmse_graph.pretraining.optimizer`)."""

    def __init__(self, *, num_edge_features: int, out_dim: int, feature_names: Sequence[str] = ()) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.register_buffer("input_scale", edge_input_scale(feature_names, num_edge_features))
        self.mlp = nn.Sequential(nn.Linear(num_edge_features, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.mask_embedding = nn.Parameter(torch.empty(out_dim))
        self.self_loop_embedding = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.mask_embedding, std=0.02)
        nn.init.normal_(self.self_loop_embedding, std=0.02)

    def forward(
        self,
        edge_attr: Tensor,
        edge_index: Tensor,
        *,
        num_nodes: int,
        node_mask: Tensor | None = None,
        add_self_loops: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Embed the edges.

        Args:
            edge_attr: pair features of each (source, target) edge.
            edge_index: (source, target) node pairs.
            num_nodes: nodes in the batch, for the self-loops.
            node_mask: True = masked; every edge with a masked source or target gets the
                edge-mask embedding. ``None`` masks nothing.
            add_self_loops: append one edge (i, i) per node with a learned self-loop
                embedding, so that a particle with no other particle still attends to itself.

        Returns:
            The edge index (with self-loops appended after the input edges when requested)
            and the matching edge embeddings.

        Shapes:
            edge_attr: (num_edges, E); edge_index: (2, num_edges).
            output: (2, num_edges') and (num_edges', out_dim), num_edges' = num_edges + num_nodes
            with self-loops.
        """
        embedding = self.mlp(edge_attr * self.input_scale.to(edge_attr.dtype))
        if node_mask is not None:
            touches_masked = node_mask[edge_index[0]] | node_mask[edge_index[1]]
            embedding = torch.where(touches_masked.unsqueeze(-1), self.mask_embedding.to(embedding.dtype), embedding)
        if add_self_loops:
            loops = torch.arange(num_nodes, device=edge_index.device)
            edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
            loop_embedding = self.self_loop_embedding.to(embedding.dtype).expand(num_nodes, -1)
            embedding = torch.cat([embedding, loop_embedding], dim=0)
        return edge_index, embedding
