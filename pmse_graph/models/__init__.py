"""Event encoders (graph encoder, transformer baseline), their heads and the factory."""

from pmse_graph.models.base import Encoder, EncoderOutput
from pmse_graph.models.config import EncoderConfig
from pmse_graph.models.factory import build_encoder, match_transformer_width
from pmse_graph.models.graph_encoder import GraphEncoder
from pmse_graph.models.heads import (
    ClassificationHead,
    ProjectionHead,
    ReconstructionDecoder,
    ReconstructionOutput,
    count_parameters,
)
from pmse_graph.models.spec import ModelInputSpec
from pmse_graph.models.transformer import TransformerEncoder

__all__ = [
    "ClassificationHead",
    "Encoder",
    "EncoderConfig",
    "EncoderOutput",
    "GraphEncoder",
    "ModelInputSpec",
    "ProjectionHead",
    "ReconstructionDecoder",
    "ReconstructionOutput",
    "TransformerEncoder",
    "build_encoder",
    "count_parameters",
    "match_transformer_width",
]
