"""End-to-end pretraining on generated ROOT files through the real data layer and encoders."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.pretraining.generated_ntuples import write_generated
from pmse_graph.errors import ConfigError, DataError
from pmse_graph.pretraining.metrics import read_metrics
from pmse_graph.pretraining.run import run_pretraining
from tests.pretraining.pretrain_batches import tiny_config


@pytest.fixture(scope="module")
def generated_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    write_generated(folder / "part0.root", num_events=200, seed=1)
    write_generated(folder / "part1.root", num_events=200, seed=2, first_event=200)
    return folder


def short_config(**overrides):
    settings = {
        "data.batch_size": 32,
        "data.shuffle_buffer": 64,
        "data.step_size": 200,
        "optim.warmup_steps": 2,
        "epochs": 3,
        "log_every": 1,
    }
    settings.update(overrides)
    return tiny_config(**settings)


def test_short_pretraining_lowers_every_loss(generated_files, tmp_path):
    run_dir = tmp_path / "run"
    result = run_pretraining(config=short_config(), data=[str(generated_files)], out=run_dir)
    assert result.status == "completed"

    # every loss term falls from the first epoch to the last
    epochs = [record for record in read_metrics(run_dir / "metrics.jsonl") if record["kind"] == "epoch"]
    assert len(epochs) == 3
    for name in ("loss_reconstruction", "loss_supcon", "loss_msn", "loss"):
        assert epochs[-1][name] < epochs[0][name], name

    # the run folder contains everything downstream needs
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["steps_per_epoch"] == info["training_events"] // 32
    assert info["schema"] == "besiii"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["encoder"]["width"] == 16
    assert yaml.safe_load((run_dir / "schema.yaml").read_text())["name"] == "besiii"
    assert "features" in json.loads((run_dir / "standardizer.json").read_text())
    assert (run_dir / "loss_curves.png").is_file()
    for epoch in range(3):
        assert (run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt").is_file()
    payload = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert payload["schema_name"] == "besiii"
    assert payload["spec"]["num_node_features"] == 25


def test_balanced_transformer_run(generated_files, tmp_path):
    config = short_config(
        epochs=1,
        **{
            "encoder.kind": "transformer",
            "data.balanced": True,
            "data.classes_per_batch": 4,
            "data.events_per_class": 4,
            "data.steps_per_epoch": 3,
            "loss.msn.enabled": False,
        },
    )
    run_dir = tmp_path / "run"
    result = run_pretraining(config=config, data=[str(generated_files / "part0.root")], out=run_dir)
    assert result.status == "completed"
    steps = [record for record in read_metrics(run_dir / "metrics.jsonl") if record["kind"] == "step"]
    assert len(steps) == 3
    # 4 classes x 4 events, each with its target view: every anchor has a positive
    assert all(record["supcon_anchors"] == 32 for record in steps)


def test_run_folder_guards(generated_files, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="--resume needs"):
        run_pretraining(config=short_config(), data=[str(generated_files)], out=run_dir, resume=True)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="already contains a run"):
        run_pretraining(config=short_config(), data=[str(generated_files)], out=run_dir)


def test_new_run_refits_stale_standardiser(generated_files, tmp_path):
    # a failed start (batch larger than the data) leaves a standardiser fitted on both files
    run_dir = tmp_path / "run"
    with pytest.raises(DataError, match="fewer than one batch"):
        run_pretraining(config=short_config(**{"data.batch_size": 100_000}), data=[str(generated_files)], out=run_dir)
    stale = (run_dir / "standardizer.json").read_text()

    # a new run on one file into that folder fits its own, equal to a fit in a fresh folder
    config = short_config(epochs=1, **{"data.steps_per_epoch": 1})
    run_pretraining(config=config, data=[str(generated_files / "part1.root")], out=run_dir)
    run_pretraining(config=config, data=[str(generated_files / "part1.root")], out=tmp_path / "fresh")
    refitted = (run_dir / "standardizer.json").read_text()
    assert refitted != stale
    assert refitted == (tmp_path / "fresh" / "standardizer.json").read_text()


def test_resume_rejects_changed_settings(generated_files, tmp_path):
    run_dir = tmp_path / "run"
    data = [str(generated_files / "part0.root")]
    config = short_config(epochs=1, **{"data.steps_per_epoch": 1})
    run_pretraining(config=config, data=data, out=run_dir)
    original = (run_dir / "config.yaml").read_text()
    standardizer = (run_dir / "standardizer.json").read_text()

    changed = short_config(epochs=2, **{"data.steps_per_epoch": 1, "data.batch_size": 16, "optim.lr": 1e-3})
    with pytest.raises(ConfigError) as error:
        run_pretraining(config=changed, data=data, out=run_dir, resume=True)
    message = str(error.value)
    assert "data.batch_size: 32 -> 16" in message
    assert "optim.lr: 0.003 -> 0.001" in message
    assert "epochs:" not in message  # growing epochs is allowed
    with pytest.raises(ConfigError, match="epochs may only grow"):
        run_pretraining(config=short_config(epochs=2, **{"data.steps_per_epoch": 1}), data=data, out=run_dir / "longer")
        run_pretraining(config=config, data=data, out=run_dir / "longer", resume=True)

    # extending the epochs continues the run; config.yaml and the standardiser stay as they were
    result = run_pretraining(config=config.model_copy(update={"epochs": 2}), data=data, out=run_dir, resume=True)
    assert result.status == "completed"
    assert result.step == 2
    assert (run_dir / "config.yaml").read_text() == original
    assert (run_dir / "standardizer.json").read_text() == standardizer


def test_new_run_rejected_after_training_began(generated_files, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("")
    with pytest.raises(ConfigError, match="already contains a run"):
        run_pretraining(config=short_config(), data=[str(generated_files)], out=run_dir)
