"""The interface both encoders share: :class:`Encoder` and :class:`EncoderOutput`.

Callers (pretraining, embedding, downstream) hold an :class:`Encoder` and need not
know which kind it is. Both kinds take the same PyG batch and an optional node
mask. Both return node states in the batch's node order and one embedding per event.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from pmse_graph.errors import DataError
from pmse_graph.models.spec import ModelInputSpec


class EncoderOutput(NamedTuple):
    """Output of an encoder.

    Shapes:
        node_states: (num_nodes, D), in the node order of the input batch.
        event_embedding: (num_graphs, D).
    """

    node_states: Tensor
    event_embedding: Tensor


class Encoder(nn.Module):
    """Base class of the event encoders, whose subclasses implement :meth:`forward`."""

    embed_dim: int
    spec: ModelInputSpec

    def forward(self, batch, node_mask: Tensor | None = None) -> EncoderOutput:  # pragma: no cover - abstract
        raise NotImplementedError


def check_batch(batch, spec: ModelInputSpec, node_mask: Tensor | None) -> None:
    """Check the batch tensors against the input spec before they reach an embedding.

    Args:
        batch: PyG ``Batch`` with ``x``, ``x_cat``, ``edge_index``, ``edge_attr``, ``cond``, ``batch``.
        spec: sizes the encoder was built for.
        node_mask: optional (num_nodes,) bool mask, True = masked.

    Under ``torch.compile`` this function returns at once: its value check needs a
    device-to-host read (``bool(bad.any())``) that would split the compiled graph in two on
    every forward. A caller that compiles an encoder runs this check eagerly before calling it
    (as :class:`~pmse_graph.pretraining.trainer.Trainer` does).

    Raises:
        DataError: naming the tensor, the expected and the found shape or value range.
    """
    if torch.compiler.is_compiling():
        return
    missing = [name for name in ("x", "x_cat", "edge_index", "edge_attr", "cond", "batch") if getattr(batch, name, None) is None]
    if missing:
        raise DataError(f"Batch is missing the tensors {missing}. Build it with the data layer's graph batching")
    num_nodes = batch.x.shape[0]
    expectations = [
        ("x", batch.x, (num_nodes, spec.num_node_features)),
        ("x_cat", batch.x_cat, (num_nodes, spec.num_categorical)),
        ("edge_attr", batch.edge_attr, (batch.edge_index.shape[1], spec.num_edge_features)),
        ("cond", batch.cond, (batch.num_graphs, spec.num_conditions)),
    ]
    for name, tensor, shape in expectations:
        if tuple(tensor.shape) != shape:
            raise DataError(
                f"Batch tensor '{name}' has shape {tuple(tensor.shape)}, expected {shape}. "
                "Check that the model was built from the same schema as the data"
            )
    for name in ("x", "edge_attr"):
        if not getattr(batch, name).is_floating_point():
            raise DataError(f"Batch tensor '{name}' must be floating point (got {getattr(batch, name).dtype})")
    if batch.x_cat.dtype != torch.long:
        raise DataError(f"Batch tensor 'x_cat' must be int64 (got {batch.x_cat.dtype})")
    if node_mask is not None and (node_mask.dtype != torch.bool or tuple(node_mask.shape) != (num_nodes,)):
        raise DataError(f"node_mask must be a bool tensor of shape ({num_nodes},) (got {node_mask.dtype} {tuple(node_mask.shape)})")

    # This costs one device sync per batch. Without it, an out-of-range category fails inside
    # nn.Embedding with an index error that names no feature.
    if num_nodes and spec.num_categorical:
        cardinalities = torch.tensor(spec.categorical_cardinalities, device=batch.x_cat.device)
        bad = (batch.x_cat < 0) | (batch.x_cat >= cardinalities)
        if bool(bad.any()):
            column = int(bad.any(dim=0).nonzero()[0])
            found = batch.x_cat[:, column][bad[:, column]][:5].tolist()
            raise DataError(
                f"Categorical feature '{spec.categorical_names[column]}' (x_cat column {column}) has values {found} "
                f"outside 0..{spec.categorical_cardinalities[column] - 1}. Check the schema's cardinalities"
            )
