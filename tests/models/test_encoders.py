"""Properties both encoders must share: shapes, finiteness, gradients, order independence, masking.

Every test runs on each encoder variant (graph, transformer, transformer with pair bias,
transformer with attention pooling) through :func:`build_encoder`, as callers use them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.models.model_batches import ENCODER_VARIANTS, make_batch, small_config

from pmse_graph.models import EncoderOutput, build_encoder

VARIANTS = list(ENCODER_VARIANTS)


def build(variant: str, spec, **overrides):
    torch.manual_seed(0)
    return build_encoder(small_config(**ENCODER_VARIANTS[variant], **overrides), spec).eval()


def random_readout(output: EncoderOutput) -> torch.Tensor:
    # a fixed random projection: a plain sum of LayerNorm outputs would have zero gradient
    generator = torch.Generator().manual_seed(1)
    node_weights = torch.randn(output.node_states.shape, generator=generator)
    event_weights = torch.randn(output.event_embedding.shape, generator=generator)
    return (output.node_states * node_weights).sum() + (output.event_embedding * event_weights).sum()


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_shapes_and_finite(variant, spec, batch):
    encoder = build(variant, spec)
    output = encoder(batch)

    assert isinstance(output, EncoderOutput)
    assert output.node_states.shape == (batch.num_nodes, encoder.embed_dim)
    assert output.event_embedding.shape == (batch.num_graphs, encoder.embed_dim)
    assert torch.isfinite(output.node_states).all()
    assert torch.isfinite(output.event_embedding).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_single_particle_batch(variant, spec, events):
    encoder = build(variant, spec)
    only_one = make_batch([events[0]])
    assert only_one.edge_index.shape[1] == 0

    output = encoder(only_one, node_mask=torch.zeros(1, dtype=torch.bool))

    assert output.node_states.shape == (1, encoder.embed_dim)
    assert torch.isfinite(output.node_states).all()
    assert torch.isfinite(output.event_embedding).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_extreme_counts_finite(variant, spec, batch):
    encoder = build(variant, spec)
    batch.cond = torch.tensor([[0, 0, 0, 0], [10**6, 10**6, 10**6, 10**6], [40, 0, 12, 28], [-3, 2, 2, 3]])

    output = encoder(batch)

    assert torch.isfinite(output.node_states).all()
    assert torch.isfinite(output.event_embedding).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradient_reaches_every_parameter(variant, spec, batch):
    encoder = build(variant, spec).train()
    node_mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    node_mask[batch.ptr[2] : batch.ptr[2] + 5] = True  # five particles of the large event

    random_readout(encoder(batch, node_mask=node_mask)).backward()

    missing = [name for name, p in encoder.named_parameters() if p.grad is None]
    zero = [name for name, p in encoder.named_parameters() if p.grad is not None and not p.grad.abs().sum() > 0]
    non_finite = [name for name, p in encoder.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert missing == []
    assert zero == []
    assert non_finite == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_permutation_invariance(variant, spec, events):
    encoder = build(variant, spec)
    rng = np.random.default_rng(3)
    orders = [rng.permutation(len(event.p3)) for event in events]
    original = make_batch(events)
    permuted = make_batch(events, orders=orders)

    with torch.no_grad():
        out_original = encoder(original)
        out_permuted = encoder(permuted)

    # node i of the permuted batch is particle orders[g][i - ptr[g]] of event g
    back = torch.cat([torch.as_tensor(order) + int(start) for order, start in zip(orders, original.ptr[:-1])])
    torch.testing.assert_close(out_permuted.event_embedding, out_original.event_embedding, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out_permuted.node_states, out_original.node_states[back], atol=1e-5, rtol=1e-4)


def perturb_particle(batch, node: int, *, generator: torch.Generator):
    """Return a copy of ``batch`` with every input of particle ``node`` replaced by noise."""
    changed = batch.clone()
    changed.x[node] = torch.randn(changed.x.shape[1], generator=generator) * 3
    changed.x_cat[node] = (changed.x_cat[node] + 1) % torch.tensor([4, 5])
    touches = (changed.edge_index[0] == node) | (changed.edge_index[1] == node)
    changed.edge_attr[touches] = torch.randn(int(touches.sum()), changed.edge_attr.shape[1], generator=generator) * 3
    return changed


@pytest.mark.parametrize("variant", VARIANTS)
def test_masked_particle_inputs_do_not_leak(variant, spec, batch):
    encoder = build(variant, spec)
    masked_node = int(batch.ptr[3]) + 1  # second particle of the typical event
    node_mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    node_mask[masked_node] = True
    changed = perturb_particle(batch, masked_node, generator=torch.Generator().manual_seed(5))

    with torch.no_grad():
        reference = encoder(batch, node_mask=node_mask)
        with_changed_inputs = encoder(changed, node_mask=node_mask)

    torch.testing.assert_close(with_changed_inputs.node_states, reference.node_states, atol=0, rtol=0)
    torch.testing.assert_close(with_changed_inputs.event_embedding, reference.event_embedding, atol=0, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_unmasked_particle_inputs_change_output(variant, spec, batch):
    encoder = build(variant, spec)
    node = int(batch.ptr[3]) + 1
    changed = perturb_particle(batch, node, generator=torch.Generator().manual_seed(5))

    with torch.no_grad():
        reference = encoder(batch)
        with_changed_inputs = encoder(changed)

    event = 3
    assert not torch.allclose(with_changed_inputs.event_embedding[event], reference.event_embedding[event])
    # other events are separate graphs and must not move
    others = [0, 1, 2]
    torch.testing.assert_close(with_changed_inputs.event_embedding[others], reference.event_embedding[others])


@pytest.mark.parametrize("variant", VARIANTS)
def test_mask_token_changes_masked_event_only(variant, spec, batch):
    encoder = build(variant, spec)
    node_mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    node_mask[int(batch.ptr[3])] = True

    with torch.no_grad():
        unmasked = encoder(batch)
        masked = encoder(batch, node_mask=node_mask)

    event_nodes = batch.batch == 3
    assert not torch.allclose(masked.event_embedding[3], unmasked.event_embedding[3])
    assert not torch.allclose(masked.node_states[event_nodes], unmasked.node_states[event_nodes])
    torch.testing.assert_close(masked.node_states[~event_nodes], unmasked.node_states[~event_nodes])


@pytest.mark.parametrize("variant", VARIANTS)
def test_encoder_bf16_autocast_finite(variant, spec, batch):
    encoder = build(variant, spec)

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        output = encoder(batch)

    assert torch.isfinite(output.node_states.float()).all()
    assert torch.isfinite(output.event_embedding.float()).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_event_independent_of_batch_mates(variant, spec, events):
    encoder = build(variant, spec)

    with torch.no_grad():
        together = encoder(make_batch(events))
        alone = [encoder(make_batch([event])) for event in events]

    for index, single in enumerate(alone):
        torch.testing.assert_close(together.event_embedding[index], single.event_embedding[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together.node_states, torch.cat([single.node_states for single in alone]), atol=1e-5, rtol=1e-4)
