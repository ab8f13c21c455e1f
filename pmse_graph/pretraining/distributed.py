"""Process-group set-up for ``torchrun`` (DistributedDataParallel) and the single-process case.

``torchrun --nproc_per_node N`` (and its multi-node form) starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set.
:func:`init_distributed` reads them, joins the process group (NCCL on GPUs, gloo on CPUs), and
picks each process's device. Without those variables it returns a one-process context, so the
same trainer code runs with and without ``torchrun``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist

from pmse_graph.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Position of this process in the job, and its device.

    Attributes:
        rank: global rank, 0 for the single-process case.
        world_size: number of processes.
        local_rank: rank on this node, which selects the GPU.
        device: the device this process trains on.
        initialized: whether this context created a process group (and must destroy it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized: bool

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the only process that prints and writes run files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1


def resolve_device(choice: Literal["auto", "cpu", "cuda"], *, local_rank: int = 0) -> torch.device:
    """Return the device for ``choice``; ``"auto"`` takes GPU ``local_rank`` when CUDA is available.

    Raises:
        ConfigError: when ``"cuda"`` is requested and no GPU is visible.
    """
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' was requested but torch finds no GPU. Use device='cpu' or 'auto'")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(
    *,
    device: Literal["auto", "cpu", "cuda"] = "auto",
    backend: Literal["auto", "gloo", "nccl"] = "auto",
) -> DistributedContext:
    """Join the ``torchrun`` process group when its environment is set, else return a one-process context.

    Args:
        device: device choice, as :func:`resolve_device`.
        backend: ``"auto"`` uses NCCL for GPUs and gloo for CPUs.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank=local_rank)
    if world_size <= 1:
        return DistributedContext(rank=0, world_size=1, local_rank=0, device=resolved, initialized=False)

    if backend == "auto":
        backend = "nccl" if resolved.type == "cuda" else "gloo"
    if backend == "nccl" and resolved.type != "cuda":
        raise ConfigError("distributed_backend='nccl' needs GPUs. Use 'gloo' or 'auto' for CPU training")
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)

    initialized = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        initialized = True
    logger.info("Joined process group: rank %d of %d, backend %s, device %s", rank, world_size, backend, resolved)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=resolved, initialized=initialized)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group that :func:`init_distributed` created."""
    if context.initialized and dist.is_initialized():
        dist.destroy_process_group()


def all_ranks_true(flag: bool, context: DistributedContext) -> bool:
    """Return whether ``flag`` is True on every rank, with one all-reduce when there are several processes."""
    if not context.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())
