"""Two-process DistributedDataParallel training on the CPU with the gloo backend."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from tests.pretraining.generated_ntuples import write_generated
from pmse_graph.pretraining.distributed import init_distributed, shutdown_distributed
from pmse_graph.pretraining.run import build_trainer
from tests.pretraining.pretrain_batches import tiny_config


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_rank(rank: int, world_size: int, port: int, data: str, out: str) -> None:
    """Body of one process, as torchrun would start it: the environment selects the rank."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    config = tiny_config(epochs=1, **{"data.batch_size": 16, "data.shuffle_buffer": 32, "data.step_size": 100, "data.steps_per_epoch": 3})
    context = init_distributed(device="cpu", backend="gloo")
    try:
        trainer = build_trainer(config=config, data=[data], out=out, resume=False, context=context)
        result = trainer.fit()
        torch.save(
            {"status": result.status, "step": result.step, "online": trainer.online.state_dict(), "target": trainer.target.state_dict()},
            os.path.join(out, f"rank{rank}.pt"),
        )
    finally:
        shutdown_distributed(context)


def test_two_ranks_end_with_identical_weights(tmp_path):
    data = write_generated(tmp_path / "events.root", num_events=200, seed=3)
    out = tmp_path / "run"
    mp.spawn(train_rank, args=(2, free_port(), str(data), str(out)), nprocs=2, join=True)

    ranks = [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    assert [state["status"] for state in ranks] == ["completed", "completed"]
    assert [state["step"] for state in ranks] == [3, 3]
    for branch in ("online", "target"):
        for name, value in ranks[0][branch].items():
            assert torch.equal(value, ranks[1][branch][name]), f"{branch}.{name}"

    # rank 0 alone wrote the run files, with weights equal to both ranks'
    checkpoint = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    for name, value in checkpoint["model"].items():
        assert torch.equal(value, ranks[0]["online"][name]), name
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4  # 3 steps and 1 epoch record
