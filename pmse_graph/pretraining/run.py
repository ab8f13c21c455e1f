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

from pmse_graph.config import atomic_write_text, dump_yaml, load_config
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


def prepare_standardizer(
    *, files: list[str], schema: Schema, config: PretrainConfig, run_dir: Path, resume: bool = False
) -> tuple[Standardizer, int | None]:
    """Load or fit the run's standardiser and save it in the run folder (rank 0 only).

    The file ``config.data.standardizer`` names wins. Otherwise a resumed run keeps the run
    folder's ``standardizer.json``, and a new run fits its own, replacing any file that an
    earlier, failed start left in the folder.

    Returns:
        ``(standardizer, training_events)``; the event count is known only after a fit.

    Raises:
        ConfigError: a resumed run whose folder has no ``standardizer.json``.
    """
    saved = run_dir / STANDARDIZER_NAME
    if resume and config.data.standardizer is None:
        if not saved.is_file():
            raise ConfigError(f"--resume needs {saved}, which does not exist. Start a new run in another --out folder")
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
    """Class-balanced batches of one epoch for this rank: its share of the events through the batcher."""
    units = dataset.shard_ranges(shard=context.rank, num_shards=context.world_size, epoch=epoch)
    batcher = ClassBalancedBatcher(
        classes_per_batch=config.data.classes_per_batch,
        events_per_class=config.data.events_per_class,
        label=config.loss.supcon.label,
        seed=config.seed * 1_000 + epoch * 100 + context.rank,
    )

    def chunks() -> Iterator[EventChunk]:
        yield from dataset.read_units(units)

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
    if resume:
        check_resume_config(config, Path(out))
    context = init_distributed(device=config.device, backend=config.distributed_backend)
    try:
        trainer = build_trainer(config=config, data=data, out=out, resume=resume, context=context)
        return trainer.fit(resume=resume)
    finally:
        shutdown_distributed(context)


def check_run_folder(run_dir: Path, *, resume: bool) -> None:
    """Reject ``--resume`` without a checkpoint and a new run over an existing one.

    A folder counts as holding a run once training has begun in it (a checkpoint or
    ``metrics.jsonl``). The files that a failed start leaves (config, schema, standardiser,
    run info) do not count; a new run rewrites them.
    """
    last = run_dir / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume needs {last}, which does not exist. Start without --resume")
    if not resume:
        for trace in (last, run_dir / "metrics.jsonl"):
            if trace.is_file():
                raise ConfigError(f"{run_dir} already contains a run ({trace}). Pass --resume to continue it or choose another --out folder")


RESUME_MAY_CHANGE = ("device", "distributed_backend", "log_every")
"""Settings that choose where and how verbosely a run executes, not what it trains; ``--resume`` accepts new values."""


def check_resume_config(config: PretrainConfig, run_dir: Path) -> None:
    """Reject a resumed run whose settings differ from the run folder's ``config.yaml``.

    Only ``epochs`` may grow, and the keys in :data:`RESUME_MAY_CHANGE` may change.

    Raises:
        ConfigError: listing every differing key with its stored and its new value.
    """
    stored_path = run_dir / "config.yaml"
    if not stored_path.is_file():
        raise ConfigError(f"--resume needs {stored_path}, which does not exist. Start a new run in another --out folder")
    stored = _flatten(load_config(PretrainConfig, stored_path).model_dump(mode="json"))
    new = _flatten(config.model_dump(mode="json"))
    differences = [
        f"{key}: {stored.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(stored) | set(new))
        if stored.get(key) != new.get(key) and key not in RESUME_MAY_CHANGE and key != "epochs"
    ]
    if new["epochs"] < stored["epochs"]:
        differences.append(f"epochs: {stored['epochs']} -> {new['epochs']} (epochs may only grow)")
    if differences:
        raise ConfigError(
            f"--resume with settings that differ from {stored_path}: " + "; ".join(differences)
            + ". Resume with that file's settings (only --epochs may grow) or start a new run in another --out folder"
        )


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


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

    files = expand_files(list(data))
    schema = load_schema(config.data.schema_name)
    fitted_events = None
    if context.is_main:
        fitted_events = _prepare_run_folder(config=config, files=files, schema=schema, run_dir=run_dir, resume=resume)
    if context.distributed:
        dist.barrier()
    standardizer = Standardizer.load(run_dir / STANDARDIZER_NAME)

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
    steps_per_epoch = _agree_steps_per_epoch(config=config, dataset=dataset, context=context, run_dir=run_dir, resume=resume, fitted_events=fitted_events)

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


def _prepare_run_folder(*, config: PretrainConfig, files: list[str], schema: Schema, run_dir: Path, resume: bool) -> int | None:
    """Write the config (new runs only), the schema and the standardiser; return the fitted event count."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        # a resumed run keeps the original record of its settings (check_resume_config compared them)
        dump_yaml(config, run_dir / "config.yaml")
        atomic_write_text(run_dir / "schema.yaml", schema_text(config.data.schema_name))
    _, events = prepare_standardizer(files=files, schema=schema, config=config, run_dir=run_dir, resume=resume)
    return events


def shard_training_events(dataset: EventDataset, context: DistributedContext) -> int:
    """Count the training-split events of this rank's share of the input (one streaming pass)."""
    units = dataset.shard_ranges(shard=context.rank, num_shards=context.world_size, epoch=0)
    return sum(chunk.num_events for chunk in dataset.read_units(units))


def _agree_steps_per_epoch(
    *, config: PretrainConfig, dataset: EventDataset, context: DistributedContext, run_dir: Path, resume: bool, fitted_events: int | None
) -> int:
    """Return the steps per epoch, the same on every rank, and write ``run_info.json`` (rank 0).

    Every rank counts the training events of its own share of the input, and the counts are
    exchanged with one all-reduce, so all ranks see the same numbers and reach the same
    decision: the steps come from the rank with the fewest events, and when one rank cannot
    fill a single batch, every rank raises the same error (none waits for a failed peer).
    A resumed run keeps the steps of ``run_info.json`` unless ``data.steps_per_epoch`` is set.

    Raises:
        DataError: a rank's share contains fewer events than one batch.
    """
    info_path = run_dir / RUN_INFO_NAME
    batch_size = config.data.classes_per_batch * config.data.events_per_class if config.data.balanced else config.data.batch_size
    if resume and info_path.is_file() and config.data.steps_per_epoch is None:
        previous = json.loads(info_path.read_text())
        return int(previous["steps_per_epoch"])

    if context.distributed:
        counts = torch.zeros(context.world_size, dtype=torch.int64, device=context.device)
        counts[context.rank] = shard_training_events(dataset, context)
        dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        per_rank = [int(count) for count in counts.cpu()]
    elif config.data.steps_per_epoch is not None:
        per_rank = [fitted_events] if fitted_events is not None else []
    else:
        per_rank = [fitted_events if fitted_events is not None else shard_training_events(dataset, context)]
    fewest = min(per_rank) if per_rank else None
    if fewest is not None and fewest < batch_size:
        where = f"process {per_rank.index(fewest)} of {context.world_size} has {fewest}" if context.distributed else f"there are {fewest}"
        raise DataError(
            f"The {config.data.split} split of the input is too small: {where} training events, fewer than one batch "
            f"of {batch_size} (events per process: {per_rank}). Lower data.batch_size, add input files or use fewer processes"
        )
    steps = config.data.steps_per_epoch if config.data.steps_per_epoch is not None else fewest // batch_size

    if context.is_main:
        write_json(
            info_path,
            {
                "files": list(dataset.files),
                "schema": dataset.schema.name,
                "training_events": sum(per_rank) if per_rank else None,
                "training_events_per_process": per_rank,
                "steps_per_epoch": steps,
                "world_size": context.world_size,
                "torch": torch.__version__,
                "torch_geometric": torch_geometric.__version__,
            },
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
        "edge_feature_names": list(spec.edge_feature_names),
    }

