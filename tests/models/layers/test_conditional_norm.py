"""CountEmbedding and ConditionalLayerNorm at ordinary and extreme counts."""

from __future__ import annotations

import torch

from pmse_graph.models.layers import ConditionalLayerNorm, CountEmbedding


def test_count_embedding_clamps_extremes():
    embedding = CountEmbedding(num_conditions=4, max_count=64, out_dim=8)
    counts = torch.tensor([[0, 0, 0, 0], [10**6, 10**6, 10**6, 10**6], [64, 64, 64, 64], [-5, 0, 0, 0]])

    vectors = embedding(counts)

    assert vectors.shape == (4, 8)
    assert torch.isfinite(vectors).all()
    torch.testing.assert_close(vectors[1], vectors[2])
    torch.testing.assert_close(vectors[3], vectors[0])


def test_count_embedding_columns_use_separate_rows():
    embedding = CountEmbedding(num_conditions=4, max_count=8, out_dim=8)

    charged = embedding(torch.tensor([[3, 0, 0, 0]]))
    neutral = embedding(torch.tensor([[0, 3, 0, 0]]))

    assert not torch.allclose(charged, neutral)


def test_conditional_norm_flat_and_padded_agree():
    torch.manual_seed(0)
    norm = ConditionalLayerNorm(16, condition_dim=8)
    torch.nn.init.normal_(norm.modulation.weight)
    condition = torch.randn(2, 8)
    padded = torch.randn(2, 3, 16)

    flat = norm(padded.reshape(6, 16), condition, index=torch.tensor([0, 0, 0, 1, 1, 1]))
    dense = norm(padded, condition)

    torch.testing.assert_close(flat, dense.reshape(6, 16))


def test_conditional_norm_finite_at_extreme_counts():
    embedding = CountEmbedding(num_conditions=4, max_count=64, out_dim=8)
    norm = ConditionalLayerNorm(16, condition_dim=8)
    counts = torch.tensor([[0, 0, 0, 0], [10**6, 10**6, 10**6, 10**6]])
    x = torch.randn(5, 16)

    y = norm(x, embedding(counts), index=torch.tensor([0, 0, 1, 1, 1]))

    assert torch.isfinite(y).all()


def test_conditional_norm_depends_on_condition():
    torch.manual_seed(0)
    norm = ConditionalLayerNorm(16, condition_dim=8)
    x = torch.randn(1, 16)

    first = norm(x, torch.randn(1, 8), index=torch.tensor([0]))
    second = norm(x, torch.randn(1, 8), index=torch.tensor([0]))

    assert not torch.allclose(first, second)
