"""Pretraining losses: masked-particle reconstruction, supervised contrast, MSN prototypes."""

from pmse_graph.pretraining.losses.msn import MSNLoss, msn_loss
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss, reconstruction_loss
from pmse_graph.pretraining.losses.supcon import SupConLoss, supcon_loss

__all__ = [
    "MSNLoss",
    "ReconstructionLoss",
    "SupConLoss",
    "msn_loss",
    "reconstruction_loss",
    "supcon_loss",
]
