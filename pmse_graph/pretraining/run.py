"""From input files to a finished run folder: :func:`run_pretraining`.

This module wires the data layer (schema, standardisation, streaming dataset) and the models
into a :class:`~pmse_graph.pretraining.trainer.Trainer`, and lays out the run folder that
downstream commands read:

* ``config.yaml``: the resolved :class:`PretrainConfig`,
* ``schema.yaml``: a copy of the event schema the run used,
* ``standardizer.json``: the standardisation of the continuous features,
* ``run_info.json``: input files, event count, steps per epoch, number of processes, versions,
* ``checkpoints/``: ``epoch_NNNN.pt`` after each epoch and ``last.pt``,
* ``metrics.jsonl`` and ``loss_curves.png``.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch_geometric

from pmse_graph.config import atomic_write_text, dump_yaml
from pmse_graph.data.chunk import EventChunk
from pmse_graph.data.dataset import EventDataset, split_mask
from pmse_graph.data.graphs import build_batch
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import SCHEMA_DIR, Schema, load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.data.validate import expand_files
from pmse_graph.errors import ConfigError, DataError
from pmse_graph.models.spec import ModelInputSpec
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.distributed import DistributedContext, init_distributed, shutdown_distributed
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss
from pmse_graph.pretraining.metrics import write_json
from pmse_graph.pretraining.model import build_pretrain_model
from pmse_graph.pretraining.sampler import ClassBalancedBatcher
from pmse_graph.pretraining.trainer import FitResult, Trainer

logger = logging.getLogger(__name__)

STANDARDIZER_NAME = "standardizer.json"
RUN_INFO_NAME = "run_info.json"


def presence_valid_mask(schema: Schema):
    """Return a function giving the regressable values of a batch's ``x`` for this schema.

    A continuous column of a group with a presence flag counts only where that flag is 1; the
    flag columns themselves and columns of groups without a flag always count. A feature
    missing inside a present group is standardised to 0 and still regressed.
    """
    num_continuous = len(schema.continuous_names)
    flag_column = {group: num_continuous + index for index, group in enumerate(schema.flag_groups)}
    guarded = [
        (column, flag_column[schema.feature(name).group])
        for column, name in enumerate(schema.continuous_names)
        if schema.feature(name).group in flag_column
    ]
    columns = torch.tensor([column for column, _ in guarded], dtype=torch.long)
    flags = torch.tensor([flag for _, flag in guarded], dtype=torch.long)

    def valid_mask(batch) -> torch.Tensor:
        valid = torch.ones_like(batch.x, dtype=torch.bool)
        if columns.numel():
            valid[:, columns.to(batch.x.device)] = batch.x[:, flags.to(batch.x.device)] > 0.5
        return valid

    return valid_mask


def schema_text(name_or_path: str) -> str:
    """Return the YAML text of a shipped schema name or a schema file path."""
    candidate = Path(name_or_path)
    if not candidate.is_file():
        candidate = SCHEMA_DIR / f"{name_or_path}.yaml"
    return candidate.read_text()


def _training_chunks(files: list[str], schema: Schema, config: PretrainConfig) -> Iterator[EventChunk]:
    """Yield the training split of every file once, in file order (for fitting and counting)."""
    for chunk in iterate_chunks(files, schema, step_size=config.data.step_size):
        keep = split_mask(chunk.event_id, config.data.split, config.data.split_fractions)
        if keep.any():
            yield chunk if keep.all() else chunk.where(keep)


def prepare_standardizer(*, files: list[str], schema: Schema, config: PretrainConfig, run_dir: Path) -> tuple[Standardizer, int | None]:
    """Load or fit the run's standardiser and save it in the run folder (rank 0 only).

    Returns:
        ``(standardizer, training_events)``; the event count is known only after a fit.
    """
    saved = run_dir / STANDARDIZER_NAME
    if saved.is_file():
        return Standardizer.load(saved), None
    if config.data.standardizer is not None:
        standardizer = Standardizer.load(config.data.standardizer)
        standardizer.check_schema(schema)
        standardizer.save(saved)
        return standardizer, None

    logger.info("fitting the standardiser on the %s split of %d file(s)", config.data.split, len(files))
    standardizer = Standardizer.from_schema(schema, seed=config.seed)
    events = 0
    for chunk in _training_chunks(files, schema, config):
        standardizer.update(chunk)
        events += chunk.num_events
    if events == 0:
        raise DataError(f"The {config.data.split} split of {files} has no events. Add input files or choose another data.split")
    standardizer.finalize()
    standardizer.save(saved)
    return standardizer, events


def count_training_events(files: list[str], schema: Schema, config: PretrainConfig) -> int:
    """Count the training-split events with one streaming pass."""
    return sum(chunk.num_events for chunk in _training_chunks(files, schema, config))


def _balanced_batches(dataset: EventDataset, config: PretrainConfig, context: DistributedContext, epoch: int):
    """Class-balanced batches of one epoch for this rank: a share of the read units through the batcher."""
    order = np.random.default_rng([config.seed, epoch]).permutation(len(dataset.units))
    units = [dataset.units[index] for index in order[context.rank :: context.world_size]]
    batcher = ClassBalancedBatcher(
        classes_per_batch=config.data.classes_per_batch,
        events_per_class=config.data.events_per_class,
        label=config.loss.supcon.label,
        seed=config.seed * 1_000 + epoch * 100 + context.rank,
    )

    def chunks() -> Iterator[EventChunk]:
        for file_index, start, stop in units:
            for chunk in iterate_chunks(
                dataset.files[file_index], dataset.schema, step_size=stop - start, validate=False, entry_start=start, entry_stop=stop, first_source_index=file_index
            ):
                keep = split_mask(chunk.event_id, dataset.split, dataset.split_fractions)
                if keep.any():
                    yield chunk if keep.all() else chunk.where(keep)

    for balanced in batcher.batches(chunks()):
        yield build_batch(balanced, dataset.standardizer, schema=dataset.schema)


def run_pretraining(*, config: PretrainConfig, data: Sequence[str], out: str | Path, resume: bool = False) -> FitResult:
    """Pretrain an encoder on ``data`` and write the run folder ``out``.

    Joins the ``torchrun`` process group when its environment is set.

    Args:
        config: resolved configuration (file plus command-line overrides).
        data: ROOT files, folders (every ``*.root`` inside) or globs.
        out: run folder; created when missing.
        resume: continue from ``out/checkpoints/last.pt``.

    Returns:
        The trainer's :class:`FitResult` (``status="interrupted"`` after SIGINT/SIGTERM).

    Raises:
        ConfigError: ``resume`` without a checkpoint, or a new run into a folder that has one.
        DataError: unreadable inputs or no training events.
    """
    check_run_folder(Path(out), resume=resume)
    context = init_distributed(device=config.device, backend=config.distributed_backend)
    try:
        trainer = build_trainer(config=config, data=data, out=out, resume=resume, context=context)
        return trainer.fit(resume=resume)
    finally:
        shutdown_distributed(context)


def check_run_folder(run_dir: Path, *, resume: bool) -> None:
    """Reject ``--resume`` without a checkpoint and a new run over an existing one."""
    last = run_dir / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume needs {last}, which does not exist. Start without --resume")
    if not resume and last.is_file():
        raise ConfigError(f"{run_dir} already contains a run ({last}). Pass --resume to continue it or choose another --out folder")


def build_trainer(*, config: PretrainConfig, data: Sequence[str], out: str | Path, resume: bool, context: DistributedContext) -> Trainer:
    """Prepare the run folder (rank 0), the data stream and the models, and return the trainer.

    Args:
        config: resolved configuration.
        data: ROOT files, folders or globs.
        out: run folder.
        resume: whether the run continues; an existing ``run_info.json`` then keeps its
            steps per epoch.
        context: this process's place in the job, from :func:`init_distributed`.
    """
    run_dir = Path(out)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)

    files = _expand_inputs(data)
    schema = load_schema(config.data.schema_name)
    if context.is_main:
        _prepare_run_folder(config=config, files=files, schema=schema, run_dir=run_dir, resume=resume, context=context)
    if context.distributed:
        dist.barrier()
    standardizer = Standardizer.load(run_dir / STANDARDIZER_NAME)
    steps_per_epoch = int(json.loads((run_dir / RUN_INFO_NAME).read_text())["steps_per_epoch"])

    spec = ModelInputSpec.from_schema(schema)
    online, target = build_pretrain_model(config, spec)
    dataset = EventDataset(
        files,
        schema,
        standardizer,
        split=config.data.split,
        split_fractions=config.data.split_fractions,
        batch_size=config.data.batch_size,
        shuffle_buffer=config.data.shuffle_buffer,
        seed=config.seed,
        step_size=config.data.step_size,
        drop_last=True,
    )

    def batches(epoch: int):
        if config.data.balanced:
            return _balanced_batches(dataset, config, context, epoch)
        dataset.set_epoch(epoch)
        return iter(dataset)

    return Trainer(
        config=config,
        online=online,
        target=target,
        batches=batches,
        steps_per_epoch=steps_per_epoch,
        run_dir=run_dir,
        reconstruction=ReconstructionLoss(groups=schema.feature_groups, categorical_names=schema.categorical_names),
        valid_mask=presence_valid_mask(schema),
        context=context,
        checkpoint_payload={"schema_name": schema.name, "spec": _spec_payload(spec)},
    )


def _prepare_run_folder(*, config: PretrainConfig, files: list[str], schema: Schema, run_dir: Path, resume: bool, context: DistributedContext) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_yaml(config, run_dir / "config.yaml")
    atomic_write_text(run_dir / "schema.yaml", schema_text(config.data.schema_name))
    _, events = prepare_standardizer(files=files, schema=schema, config=config, run_dir=run_dir)
    info_path = run_dir / RUN_INFO_NAME
    if resume and info_path.is_file() and config.data.steps_per_epoch is None:
        previous = json.loads(info_path.read_text())
        steps_per_epoch = int(previous["steps_per_epoch"])
        events = previous.get("training_events", events)
    else:
        steps_per_epoch = _steps_per_epoch(config, files, schema, context, events)
    write_json(
        info_path,
        {
            "files": files,
            "schema": schema.name,
            "training_events": events,
            "steps_per_epoch": steps_per_epoch,
            "world_size": context.world_size,
            "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
        },
    )


def _expand_inputs(data: Sequence[str]) -> list[str]:
    items: list[str] = []
    for item in data:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(file) for file in path.glob("*.root"))
            if not found:
                raise DataError(f"No *.root file found in the folder {path}")
            items.extend(found)
        else:
            items.append(str(item))
    return expand_files(items)


def _steps_per_epoch(config: PretrainConfig, files: list[str], schema: Schema, context: DistributedContext, events: int | None) -> int:
    if config.data.steps_per_epoch is not None:
        return config.data.steps_per_epoch
    if events is None:
        events = count_training_events(files, schema, config)
    batch_size = config.data.classes_per_batch * config.data.events_per_class if config.data.balanced else config.data.batch_size
    steps = events // (batch_size * context.world_size)
    if steps < 1:
        raise DataError(
            f"The training split has {events} events, fewer than one batch of {batch_size} events per process "
            f"({context.world_size} process(es)). Lower data.batch_size or add input files"
        )
    return steps


def _spec_payload(spec: ModelInputSpec) -> dict:
    return {
        "num_node_features": spec.num_node_features,
        "categorical_cardinalities": list(spec.categorical_cardinalities),
        "num_edge_features": spec.num_edge_features,
        "num_conditions": spec.num_conditions,
        "feature_groups": {name: list(columns) for name, columns in spec.feature_groups.items()},
        "categorical_names": list(spec.categorical_names),
    }

