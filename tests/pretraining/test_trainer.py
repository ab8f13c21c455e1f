"""Tests of the training loop on hand-built batches: resume equality, divergence, checkpoints."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from pmse_graph.pretraining.checkpoint import LAST_NAME
from pmse_graph.pretraining.distributed import DistributedContext
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss
from pmse_graph.pretraining.metrics import read_metrics
from pmse_graph.pretraining.model import build_pretrain_model
from pmse_graph.pretraining.trainer import Trainer, TrainingDivergedError
from tests.pretraining.pretrain_batches import CATEGORICAL_NAMES, GROUPS, make_batch, tiny_config, tiny_spec

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), initialized=False)
STEPS_PER_EPOCH = 3


def epoch_source(*, interrupt_at: int | None = None, counter: list[int] | None = None):
    """Two batches per epoch (the trainer reads them again for the third step)."""

    def batches(epoch: int):
        for index in range(2):
            if counter is not None:
                counter[0] += 1
                if counter[0] == interrupt_at:
                    os.kill(os.getpid(), signal.SIGINT)
            yield make_batch(num_events=12, seed=epoch * 10 + index)

    return batches


def make_trainer(run_dir: Path, *, source, config=None) -> Trainer:
    config = config or tiny_config()
    torch.manual_seed(0)
    online, target = build_pretrain_model(config, tiny_spec())
    return Trainer(
        config=config,
        online=online,
        target=target,
        batches=source,
        steps_per_epoch=STEPS_PER_EPOCH,
        run_dir=run_dir,
        reconstruction=ReconstructionLoss(groups=GROUPS, categorical_names=CATEGORICAL_NAMES),
        context=CPU,
    )


def test_resume_matches_uninterrupted(tmp_path):
    reference = make_trainer(tmp_path / "reference", source=epoch_source())
    assert reference.fit().status == "completed"

    # SIGINT while the batch of step 5 is produced: that step finishes, then last.pt is written
    counter = [0]
    interrupted = make_trainer(tmp_path / "resumed", source=epoch_source(interrupt_at=5, counter=counter))
    result = interrupted.fit()
    assert result.status == "interrupted"
    assert result.step == 5
    assert result.last_checkpoint == tmp_path / "resumed" / "checkpoints" / LAST_NAME

    resumed = make_trainer(tmp_path / "resumed", source=epoch_source())
    assert resumed.fit(resume=True).status == "completed"
    assert resumed.step == reference.step == 2 * STEPS_PER_EPOCH

    for name, value in reference.online.state_dict().items():
        assert torch.equal(value, resumed.online.state_dict()[name]), name
    for name, value in reference.target.state_dict().items():
        assert torch.equal(value, resumed.target.state_dict()[name]), name


def test_checkpoint_loads_weights_only(tmp_path):
    trainer = make_trainer(tmp_path, source=epoch_source(), config=tiny_config(epochs=1))
    trainer.fit()
    for name in ("epoch_0000.pt", LAST_NAME):
        payload = torch.load(tmp_path / "checkpoints" / name, weights_only=True)
        assert payload["step"] == STEPS_PER_EPOCH
        assert payload["epoch"] == 1
        assert isinstance(payload["rng"]["torch"], torch.Tensor)
        assert payload["config"]["encoder"]["width"] == 16
        assert set(payload["model"]) == set(trainer.online.state_dict())


def test_metrics_and_plot_written(tmp_path):
    trainer = make_trainer(tmp_path, source=epoch_source(), config=tiny_config(epochs=1))
    trainer.fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    steps = [record for record in records if record["kind"] == "step"]
    epochs = [record for record in records if record["kind"] == "epoch"]
    assert [record["step"] for record in steps] == [1, 2, 3]
    assert len(epochs) == 1
    for key in ("loss", "loss_reconstruction", "loss_supcon", "loss_msn", "lr", "ema_momentum", "events_per_s", "reconstruction/cont/kinematics"):
        assert key in steps[0], key
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000


def test_nan_loss_names_step_events_and_checkpoint(tmp_path):
    def batches(epoch: int):
        batch = make_batch(num_events=12, seed=epoch)
        if epoch == 1:
            batch.x[0, 0] = float("nan")
        yield batch

    trainer = make_trainer(tmp_path, source=batches, config=tiny_config(epochs=2))
    with pytest.raises(TrainingDivergedError) as error:
        trainer.fit()
    message = str(error.value)
    assert f"step {STEPS_PER_EPOCH}" in message
    assert "1000, 1001" in message  # event ids of the epoch-1 batch
    assert str(tmp_path / "checkpoints" / "epoch_0000.pt") in message


def test_lower_losses_on_repeated_batches(tmp_path):
    config = tiny_config(epochs=4, **{"optim.warmup_steps": 1})
    trainer = make_trainer(tmp_path, source=epoch_source(), config=config)
    result = trainer.fit()
    first, last = result.epoch_losses[0], result.epoch_losses[-1]
    for name in ("loss_reconstruction", "loss_supcon", "loss_msn"):
        assert last[name] < first[name], name


def epoch_records(run_dir: Path) -> list[dict]:
    return [record for record in read_metrics(run_dir / "metrics.jsonl") if record["kind"] == "epoch"]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """Epoch records and summaries of a two-epoch run without interruption."""
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    result = make_trainer(run_dir, source=epoch_source()).fit()
    return epoch_records(run_dir), result.epoch_losses


@pytest.mark.parametrize("interrupt_at", [2, 3], ids=["mid-epoch", "last-step"])
def test_interrupted_epoch_summary_matches_uninterrupted(tmp_path, interrupt_at, uninterrupted_run):
    expected, reference_losses = uninterrupted_run

    # SIGINT while the batch of step 2 or 3 (the last) of epoch 0 is produced, then --resume
    counter = [0]
    interrupted = make_trainer(tmp_path / "resumed", source=epoch_source(interrupt_at=interrupt_at, counter=counter))
    result = interrupted.fit()
    assert result.status == "interrupted"
    assert result.step == interrupt_at
    resumed = make_trainer(tmp_path / "resumed", source=epoch_source())
    resumed_result = resumed.fit(resume=True)
    assert resumed_result.status == "completed"

    # the epoch-0 summary is written once and averages all three steps, as without interruption
    summaries = result.epoch_losses + resumed_result.epoch_losses
    assert len(summaries) == 2
    records = epoch_records(tmp_path / "resumed")
    assert [record["epoch"] for record in records] == [0, 1]
    for got, want, summary, reference_summary in zip(records, expected, summaries, reference_losses):
        assert got["events"] == want["events"] == 12 * STEPS_PER_EPOCH
        for name in ("loss", "loss_reconstruction", "loss_supcon", "loss_msn"):
            assert got[name] == pytest.approx(want[name], rel=1e-6), name
            assert summary[name] == pytest.approx(reference_summary[name], rel=1e-6), name
