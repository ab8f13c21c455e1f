"""Tests of the particle masking rules."""

from __future__ import annotations

import pytest
import torch

from pmse_graph.errors import ConfigError
from pmse_graph.pretraining.masking import masked_counts, sample_node_mask


def test_masked_counts_rules():
    counts = torch.tensor([0, 1, 2, 3, 10, 40])
    assert masked_counts(counts, fraction=0.3).tolist() == [0, 0, 1, 1, 3, 12]
    # a high fraction still leaves one particle unmasked
    assert masked_counts(counts, fraction=0.99).tolist() == [0, 0, 1, 2, 9, 39]
    # a low fraction still masks one particle of every event with two or more
    assert masked_counts(counts, fraction=0.01).tolist() == [0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_masked_counts_rejects_fraction(fraction):
    with pytest.raises(ConfigError, match="fraction"):
        masked_counts(torch.tensor([3]), fraction=fraction)


def test_sample_node_mask_per_event():
    sizes = torch.tensor([1, 2, 5, 1, 19, 3])
    batch_index = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        mask = sample_node_mask(batch_index, num_graphs=len(sizes), fraction=0.4, generator=generator)
        per_event = torch.zeros(len(sizes), dtype=torch.long).index_add_(0, batch_index, mask.long())
        assert per_event.tolist() == masked_counts(sizes, fraction=0.4).tolist()
        assert per_event[sizes == 1].eq(0).all()
        assert (per_event < sizes)[sizes >= 2].all()


def test_sample_node_mask_is_uniform_within_event():
    batch_index = torch.zeros(4, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    hits = torch.zeros(4)
    for _ in range(2000):
        hits += sample_node_mask(batch_index, num_graphs=1, fraction=0.25, generator=generator).float()
    frequency = hits / 2000
    assert torch.allclose(frequency, torch.full((4,), 0.25), atol=0.04)


def test_sample_node_mask_reproducible_and_handles_empty_graphs():
    batch_index = torch.tensor([0, 0, 0, 2, 2])
    first = sample_node_mask(batch_index, num_graphs=3, fraction=0.5, generator=torch.Generator().manual_seed(7))
    second = sample_node_mask(batch_index, num_graphs=3, fraction=0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, second)
    assert sample_node_mask(torch.zeros(0, dtype=torch.long), num_graphs=2, fraction=0.5).shape == (0,)
