"""The modules trained in pretraining: :class:`PretrainModel` (online branch) and its EMA target.

The online branch is the encoder with the heads its losses need: a projection head for SupCon
and MSN, a reconstruction decoder for the masked particles, and the MSN prototypes. The target
branch is an exponential-moving-average copy of the encoder and projection head, applied to the
unmasked event. Only modules that an enabled loss uses are built, so every parameter receives a
gradient.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from pmse_graph.models import ProjectionHead, ReconstructionDecoder, ReconstructionOutput, build_encoder
from pmse_graph.models.spec import ModelInputSpec
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.ema import make_target
from pmse_graph.pretraining.losses.msn import MSNLoss, MSNResult


class OnlineOutput(NamedTuple):
    """Output of the online branch on the masked view.

    Shapes:
        event_embedding: (num_graphs, D).
        projection: (num_graphs, P), ``None`` without a projection head.
        reconstruction: predictions for the masked nodes only, continuous (M, F) and one
            (M, cardinality) logit tensor per categorical feature; ``None`` without a decoder.
        msn: the MSN loss against the target projection; ``None`` without MSN.
    """

    event_embedding: Tensor
    projection: Tensor | None
    reconstruction: ReconstructionOutput | None
    msn: MSNResult | None


class PretrainModel(nn.Module):
    """Online encoder plus the heads of the enabled losses.

    Args:
        encoder: an encoder from :func:`pmse_graph.models.build_encoder`.
        projector: projection head for SupCon and MSN, or ``None``.
        decoder: reconstruction decoder, or ``None``.
        msn: MSN prototypes and loss, or ``None``.
    """

    def __init__(
        self,
        *,
        encoder: nn.Module,
        projector: nn.Module | None,
        decoder: nn.Module | None,
        msn: MSNLoss | None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.decoder = decoder
        self.msn = msn

    def forward(self, batch, node_mask: Tensor, target_projection: Tensor | None = None) -> OnlineOutput:
        """Encode the masked view and apply the heads.

        The MSN loss is computed here rather than by the caller because DistributedDataParallel
        only synchronises the gradients of parameters (the prototypes) used inside ``forward``.

        Args:
            batch: PyG batch as the data layer builds it.
            node_mask: (num_nodes,) bool, True = masked.
            target_projection: (num_graphs, P) target-view projection, needed with MSN.
        """
        encoded = self.encoder(batch, node_mask=node_mask)
        projection = self.projector(encoded.event_embedding) if self.projector is not None else None
        reconstruction = None
        if self.decoder is not None:
            reconstruction = self.decoder(encoded.node_states[node_mask], encoded.event_embedding, batch.batch[node_mask])
        msn = None
        if self.msn is not None:
            if target_projection is None:
                raise ValueError("Expected the target projection for the MSN loss (got None)")
            msn = self.msn(projection, target_projection)
        return OnlineOutput(event_embedding=encoded.event_embedding, projection=projection, reconstruction=reconstruction, msn=msn)


class TargetBranch(nn.Module):
    """EMA copy of the online encoder and projection head, applied to the unmasked view."""

    def __init__(self, *, encoder: nn.Module, projector: nn.Module | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, batch) -> Tensor:
        """Return the target projection (num_graphs, P), or the event embedding without a projector."""
        embedding = self.encoder(batch).event_embedding
        return self.projector(embedding) if self.projector is not None else embedding


def needs_target(config: PretrainConfig) -> bool:
    """Return whether an enabled loss uses the target (unmasked) view."""
    return config.loss.msn.enabled or (config.loss.supcon.enabled and config.loss.supcon.include_target_view)


def build_pretrain_model(config: PretrainConfig, spec: ModelInputSpec) -> tuple[PretrainModel, TargetBranch | None]:
    """Build the online branch and, when a loss needs it, its EMA target.

    Args:
        config: the run's configuration.
        spec: input sizes from the data schema.

    Returns:
        ``(online, target)``; ``target`` is ``None`` when no enabled loss uses the unmasked view.
    """
    encoder = build_encoder(config.encoder, spec)
    losses = config.loss
    projector = None
    if losses.supcon.enabled or losses.msn.enabled:
        projector = ProjectionHead(encoder.embed_dim, config.heads.projection_hidden, config.heads.projection_dim)
    decoder = ReconstructionDecoder(encoder.embed_dim, spec) if losses.reconstruction.enabled else None
    msn = None
    if losses.msn.enabled:
        msn = MSNLoss(
            dim=config.heads.projection_dim,
            num_prototypes=losses.msn.num_prototypes,
            temperature=losses.msn.temperature,
            target_temperature=losses.msn.target_temperature,
            mean_entropy_weight=losses.msn.mean_entropy_weight,
        )
    online = PretrainModel(encoder=encoder, projector=projector, decoder=decoder, msn=msn)
    target = None
    if needs_target(config):
        target = make_target(TargetBranch(encoder=encoder, projector=projector))
    return online, target


def target_source(online: PretrainModel) -> TargetBranch:
    """Return a view of the online modules with the target's structure, for the EMA update."""
    return TargetBranch(encoder=online.encoder, projector=online.projector)
