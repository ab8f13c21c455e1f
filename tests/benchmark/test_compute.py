"""Tests of the FLOP count and the matmul peak (the tiny suite run checks the memory measurement)."""

from __future__ import annotations

import math

import torch

from pmse_graph.benchmark.compute import count_flops, matmul_peak


def test_count_flops_of_linear_layer():
    layer = torch.nn.Linear(4, 3, bias=False)
    x = torch.randn(5, 4)
    # one (5 x 4) @ (4 x 3) product: 5 * 4 * 3 multiply-adds, counted as two FLOPs each
    assert count_flops(lambda: layer(x)) == 2 * 5 * 4 * 3


def test_count_flops_includes_backward():
    layer = torch.nn.Linear(4, 3, bias=False)
    x = torch.randn(5, 4, requires_grad=True)
    forward = count_flops(lambda: layer(x))
    both = count_flops(lambda: layer(x).sum().backward())
    assert both == 3 * forward  # gradients of the input and of the weight: one product each


def test_matmul_peak_positive_and_finite():
    flops = matmul_peak(size=128, repeats=2)
    assert math.isfinite(flops)
    assert flops > 0
