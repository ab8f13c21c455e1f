"""Weight decay is chosen by module type: which parameters AdamW decays."""

from __future__ import annotations

import pytest
import torch

from pmse_graph.pretraining.model import build_pretrain_model
from pmse_graph.pretraining.optimizer import build_adamw, split_weight_decay
from tests.pretraining.pretrain_batches import tiny_config, tiny_spec


def exempt_names(model: torch.nn.Module) -> set[str]:
    _, exempt = split_weight_decay(model)
    exempt_ids = {id(parameter) for parameter in exempt}
    return {name for name, parameter in model.named_parameters() if id(parameter) in exempt_ids}


@pytest.mark.parametrize("kind", ["graph", "transformer"])
def test_weight_decay_by_module_type(kind):
    online, _ = build_pretrain_model(tiny_config(**{"encoder.kind": kind}), tiny_spec())
    names = exempt_names(online)
    all_names = {name for name, _ in online.named_parameters()}

    # the MLPs inside node_embedding have "embedding" in their names but are linear layers
    for name in ("encoder.node_embedding.mlp.0.weight", "encoder.node_embedding.mlp.2.weight"):
        assert name in all_names
        assert name not in names
    assert "encoder.node_embedding.mask_token" in names
    assert "encoder.node_embedding.categorical.0.weight" in names  # nn.Embedding table
    assert "encoder.count_embedding.table.weight" in names  # nn.Embedding table
    assert "encoder.node_embedding.mlp.0.bias" in names
    norm_weights = [name for name in all_names if ".modulation." in name]  # ConditionalLayerNorm
    assert norm_weights and set(norm_weights) <= names
    if kind == "graph":
        for name in ("encoder.edge_embedding.mlp.0.weight", "encoder.edge_embedding.mlp.2.weight"):
            assert name in all_names
        assert name not in names
        assert {"encoder.edge_embedding.mask_embedding", "encoder.edge_embedding.self_loop_embedding"} <= names
    else:
        assert "encoder.cls_token" in names
    assert {"projector.net.1.weight", "decoder.trunk.1.weight"} <= names  # nn.LayerNorm affine weights
    # every other exempt parameter is a bias or sits in an nn.Embedding or a norm module
    tokens = {"encoder.node_embedding.mask_token", "encoder.edge_embedding.mask_embedding", "encoder.edge_embedding.self_loop_embedding", "encoder.cls_token"}
    for name in names - tokens:
        owner = online.get_submodule(name.rsplit(".", 1)[0])
        grand_owner = online.get_submodule(name.rsplit(".", 2)[0])
        assert name.endswith(".bias") or isinstance(owner, (torch.nn.Embedding, torch.nn.LayerNorm)) or "Norm" in type(grand_owner).__name__, name
    # prototypes and attention-pooling queries are ordinary weights
    assert "msn.prototypes" not in names


def test_build_adamw_groups():
    online, _ = build_pretrain_model(tiny_config(), tiny_spec())
    optimizer = build_adamw(online, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.99))
    decay, exempt = optimizer.param_groups
    assert decay["weight_decay"] == 0.05
    assert exempt["weight_decay"] == 0.0
    assert len(decay["params"]) + len(exempt["params"]) == sum(1 for parameter in online.parameters() if parameter.requires_grad)
    assert {id(p) for p in decay["params"]}.isdisjoint(id(p) for p in exempt["params"])
