"""Two-process DistributedDataParallel training on the CPU with the gloo backend."""

from __future__ import annotations

import json
import os
import socket

import torch
import torch.multiprocessing as mp

from tests.pretraining.generated_ntuples import write_generated
from pmse_graph.errors import DataError
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
    # the default read unit (50,000 entries) is far larger than the file: one file, one unit
    config = tiny_config(epochs=1, **{"data.batch_size": 16, "data.shuffle_buffer": 32})
    assert config.data.step_size == 50_000
    context = init_distributed(device="cpu", backend="gloo")
    try:
        trainer = build_trainer(config=config, data=[data], out=out, resume=False, context=context)
        read_ids: list[int] = []
        source = trainer.batches

        def recording_source(epoch: int):
            for batch in source(epoch):
                read_ids.extend(batch.event_id.tolist())
                yield batch

        trainer.batches = recording_source
        result = trainer.fit()
        torch.save(
            {
                "status": result.status,
                "step": result.step,
                "steps_per_epoch": trainer.steps_per_epoch,
                "event_ids": torch.tensor(read_ids),
                "online": trainer.online.state_dict(),
                "target": trainer.target.state_dict(),
            },
            os.path.join(out, f"rank{rank}.pt"),
        )
    finally:
        shutdown_distributed(context)


def test_two_ranks_disjoint_events_equal_weights(tmp_path):
    data = write_generated(tmp_path / "events.root", num_events=200, seed=3)
    out = tmp_path / "run"
    mp.spawn(train_rank, args=(2, free_port(), str(data), str(out)), nprocs=2, join=True)

    ranks = [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    assert [state["status"] for state in ranks] == ["completed", "completed"]
    # both ranks agree on the steps, from the rank with fewer training events
    info = json.loads((out / "run_info.json").read_text())
    per_process = info["training_events_per_process"]
    assert len(per_process) == 2
    assert min(per_process) > 16
    steps = min(per_process) // 16
    assert [state["step"] for state in ranks] == [steps, steps] == [state["steps_per_epoch"] for state in ranks]

    # each rank read its own share of the single file: no event on both ranks
    event_ids = [set(state["event_ids"].tolist()) for state in ranks]
    assert all(len(ids) >= 16 for ids in event_ids)
    assert event_ids[0].isdisjoint(event_ids[1])

    for branch in ("online", "target"):
        for name, value in ranks[0][branch].items():
            assert torch.equal(value, ranks[1][branch][name]), f"{branch}.{name}"

    # rank 0 alone wrote the run files, with weights equal to both ranks'
    checkpoint = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    for name, value in checkpoint["model"].items():
        assert torch.equal(value, ranks[0]["online"][name]), name
    assert len((out / "metrics.jsonl").read_text().splitlines()) == steps + 1  # one record per step and 1 epoch record


def start_rank_expecting_error(rank: int, world_size: int, port: int, data: str, out: str) -> None:
    """Build the trainer on a share too small for one batch and write the error each rank raises."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    config = tiny_config(epochs=1, **{"data.batch_size": 16})
    context = init_distributed(device="cpu", backend="gloo")
    try:
        build_trainer(config=config, data=[data], out=out, resume=False, context=context)
        message = "no error"
    except DataError as error:
        message = str(error)
    finally:
        shutdown_distributed(context)
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as stream:
        stream.write(message)


def test_small_share_fails_on_every_rank(tmp_path):
    # 36 events, about 80% in the training split: about 14 per rank, fewer than one batch
    data = write_generated(tmp_path / "events.root", num_events=36, seed=3)
    out = tmp_path / "run"
    mp.spawn(start_rank_expecting_error, args=(2, free_port(), str(data), str(out)), nprocs=2, join=True)

    messages = [(out / f"rank{rank}.txt").read_text() for rank in range(2)]
    assert messages[0] == messages[1]
    assert "fewer than one batch of 16" in messages[0]
    assert "events per process" in messages[0]
