"""Speed, memory and FLOPs of one encoder, and the machine's matmul peak, measured in the same run.

* :func:`matmul_peak` times square fp32 matrix products and returns the median FLOP/s;
* :func:`measure_encoder` times inference and training steps of an encoder on one fixed batch
  (medians of repeats, after one warm-up call), counts its FLOPs per event with
  ``torch.utils.flop_counter.FlopCounterMode`` and records the peak memory of a training step.

The training step here is the encoder alone (forward, backward of a stand-in loss, AdamW
update), so encoders are compared without the pretraining heads and losses, which are the same
for all of them. In torch 2.13, ``FlopCounterMode`` counts matrix products (mm, bmm, addmm,
baddbmm), convolutions and the CUDA attention kernels. It skips element-wise operations,
softmax, scatter and gather (message passing) and the fused CPU attention kernel, so every
FLOP count here is a lower bound.
"""

from __future__ import annotations

import copy
import logging
import math
import multiprocessing
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from pmse_graph.models import count_parameters

logger = logging.getLogger(__name__)

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _median_seconds(step: Callable[[], object], *, repeats: int, synchronize: Callable[[], None]) -> float:
    step()  # warm-up: allocator, kernels, lazy initialisation
    synchronize()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


MIN_PEAK_SECONDS = 0.5
"""Minimum total seconds of timed matrix products, so small matrices get enough repeats for a stable median."""


def matmul_peak(*, size: int = 2048, repeats: int = 5, device: torch.device = torch.device("cpu")) -> float:
    """Return the median fp32 FLOP/s of ``size`` x ``size`` matrix products on ``device``.

    At least ``repeats`` products are timed, and more when they take under ``MIN_PEAK_SECONDS``
    in all.
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device)
    b = torch.randn(size, size, generator=generator).to(device)
    synchronize = _synchronizer(device)
    first = _median_seconds(lambda: a @ b, repeats=1, synchronize=synchronize)
    repeats = max(repeats, math.ceil(MIN_PEAK_SECONDS / max(first, 1e-6)))
    seconds = _median_seconds(lambda: a @ b, repeats=repeats, synchronize=synchronize)
    return 2.0 * size**3 / seconds


def _rss_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{_STATUS} has no {field} line")


def _first_step_rss(encoder: torch.nn.Module, batch) -> int:
    """Run one training step in this (fresh) process and return the RSS high-water mark it added, in bytes."""
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4)
    encoder.train()
    _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS (Linux)
    start = _rss_kib("VmRSS")
    encoder(batch).event_embedding.square().mean().backward()
    optimizer.step()
    return (_rss_kib("VmHWM") - start) * 1024


def training_step_memory(encoder: torch.nn.Module, batch) -> tuple[float, str]:
    """Return the peak memory one training step adds (bytes) and how it was measured.

    On a GPU this is the CUDA allocator's peak above the memory allocated before the step. On
    the CPU the step runs in a freshly spawned process, because a process that has already
    trained keeps freed memory in its allocator and would show almost no growth. The value is
    that process's resident-set high-water mark above its level before the step (activations,
    gradients and the AdamW state).
    """
    device = next(encoder.parameters()).device
    if device.type == "cuda":
        optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        encoder.train()
        encoder(batch).event_embedding.square().mean().backward()
        optimizer.step()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated(device) - start), "CUDA allocator peak"
    if not _CLEAR_REFS.exists():
        return float("nan"), "not measured: /proc/self/clear_refs is missing"
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return float(pool.apply(_first_step_rss, (encoder, batch))), "RSS high-water mark of a fresh process"


def count_flops(step: Callable[[], object]) -> int:
    """Return the FLOPs that ``FlopCounterMode`` counts while ``step()`` runs."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def measure_encoder(encoder: torch.nn.Module, batch, *, repeats: int, peak_flops: float, seed: int = 0) -> dict[str, float | int | str]:
    """Time, count and measure one encoder on one batch of events.

    Args:
        encoder: the encoder; its weights are updated by the timed training steps, so pass a copy
            when they matter.
        batch: a PyG batch already on the encoder's device.
        repeats: timed repeats per measurement (the median is returned).
        peak_flops: measured matmul peak in FLOP/s, for ``peak_share``.
        seed: seed of the stand-in loss's dropout and of the optimiser state.

    Returns:
        ``parameters``, ``inference_events_per_s``, ``training_events_per_s``,
        ``inference_flops_per_event``, ``training_flops_per_event``, ``peak_share`` (training
        FLOP/s over ``peak_flops``), ``peak_memory_mb`` (what one training step adds, see
        :func:`training_step_memory`) and ``peak_memory_method``.
    """
    torch.manual_seed(seed)
    device = next(encoder.parameters()).device
    synchronize = _synchronizer(device)
    events = int(batch.num_graphs)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4)

    def infer() -> torch.Tensor:
        with torch.inference_mode():
            return encoder(batch).event_embedding

    def forward_backward() -> None:
        loss = encoder(batch).event_embedding.square().mean()  # stand-in loss, same for every encoder
        loss.backward()

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward()
        optimizer.step()

    encoder.eval()
    inference_seconds = _median_seconds(infer, repeats=repeats, synchronize=synchronize)
    inference_flops = count_flops(infer)
    encoder.train()
    training_seconds = _median_seconds(train, repeats=repeats, synchronize=synchronize)
    optimizer.zero_grad(set_to_none=True)
    training_flops = count_flops(forward_backward)
    optimizer.zero_grad(set_to_none=True)
    memory_bytes, memory_method = training_step_memory(copy.deepcopy(encoder), batch)
    encoder.eval()

    training_rate = events / training_seconds
    return {
        "parameters": count_parameters(encoder),
        "timing_batch": events,
        "inference_events_per_s": events / inference_seconds,
        "training_events_per_s": training_rate,
        "inference_flops_per_event": inference_flops / events,
        "training_flops_per_event": training_flops / events,
        "peak_share": training_flops / events * training_rate / peak_flops,
        "peak_memory_mb": memory_bytes / 2**20,
        "peak_memory_method": memory_method,
    }


def measure_compile(encoder: torch.nn.Module, batch, *, repeats: int) -> dict[str, float | str | None]:
    """Time training steps with ``torch.compile`` off and on, and note whether torch-scatter imports.

    A compilation failure is recorded as text instead of raised, because the result states
    which configurations work on this machine.
    """
    import importlib.util

    def rate(module: torch.nn.Module) -> float:
        optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-4)
        device = next(encoder.parameters()).device

        def train() -> None:
            optimizer.zero_grad(set_to_none=True)
            module(batch).event_embedding.square().mean().backward()
            optimizer.step()

        return batch.num_graphs / _median_seconds(train, repeats=repeats, synchronize=_synchronizer(device))

    encoder.train()
    result: dict[str, float | str | None] = {
        "torch_scatter_installed": "yes" if importlib.util.find_spec("torch_scatter") else "no",
        "eager_training_events_per_s": rate(encoder),
        "compiled_training_events_per_s": None,
        "compile_error": None,
    }
    try:
        result["compiled_training_events_per_s"] = rate(torch.compile(encoder))
    except Exception as exc:  # noqa: BLE001 - any backend failure is the measured outcome
        logger.warning("torch.compile failed: %s", exc)
        result["compile_error"] = f"{type(exc).__name__}: {exc}"[:300]
    encoder.eval()
    return result
