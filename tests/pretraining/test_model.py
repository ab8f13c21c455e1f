"""Tests of the pretraining modules: every parameter trains, the target only follows."""

from __future__ import annotations

import pytest
import torch

from pmse_graph.pretraining.losses.supcon import supcon_loss
from pmse_graph.pretraining.masking import sample_node_mask
from pmse_graph.pretraining.model import build_pretrain_model
from tests.pretraining.pretrain_batches import make_batch, tiny_config, tiny_spec


@pytest.mark.parametrize("kind", ["graph", "transformer"])
def test_gradient_reaches_every_online_parameter(kind):
    torch.manual_seed(0)
    online, target = build_pretrain_model(tiny_config(**{"encoder.kind": kind}), tiny_spec())
    batch = make_batch(num_events=10, sizes=[1, 2, 3, 4, 5, 6, 7, 2, 3, 19])
    node_mask = sample_node_mask(batch.batch, num_graphs=batch.num_graphs, fraction=0.3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target_projection = target(batch)
    output = online(batch, node_mask, target_projection)
    loss = (
        output.reconstruction.continuous.pow(2).mean()
        + sum(logits.logsumexp(dim=-1).mean() for logits in output.reconstruction.categorical_logits)
        + supcon_loss(output.projection, batch.y).loss
        + output.msn.loss
    )
    loss.backward()
    missing = [name for name, parameter in online.named_parameters() if parameter.grad is None or not torch.isfinite(parameter.grad).all()]
    assert missing == []
    assert all(not parameter.requires_grad for parameter in target.parameters())


def test_only_enabled_heads_are_built():
    config = tiny_config(**{"loss.supcon.enabled": False, "loss.msn.enabled": False})
    online, target = build_pretrain_model(config, tiny_spec())
    assert online.projector is None
    assert online.msn is None
    assert target is None
    assert online.decoder is not None
