"""Pretraining step throughput: events/s of one full optimiser step, fp32 against bf16 autocast.

    pmse-graph simulate --events 3000 --seed 5 --out sim/ \
        --truth-trees ../shared/data/topoana/jpsi1.root --particle-table ../shared/data/decay/pdt.table
    python benchmarks/bench_pretrain.py --data sim/ --batch-size 128 --steps 8 --append

One step is what ``pmse-graph pretrain`` runs: masking, the online encoder on the masked view,
the EMA target on the unmasked view, reconstruction + SupCon losses, backward, gradient
clipping, AdamW and the EMA update. Batches are built once from the given ROOT files and kept in
memory, so the figures leave out reading. The encoders take their sizes from
``configs/pretrain_gnn.yaml`` and ``configs/pretrain_transformer.yaml``. The table gives the
median over the steps after ``--warmup`` warm-up steps, per wall second and per CPU second of
the process. ``--append`` adds the rows to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pmse_graph.config import apply_overrides, load_config
from pmse_graph.data.dataset import EventDataset
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.models import ModelInputSpec, count_parameters
from pmse_graph.pretraining.distributed import DistributedContext
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss
from pmse_graph.pretraining.metrics import read_metrics
from pmse_graph.pretraining.model import build_pretrain_model
from pmse_graph.pretraining.run import _expand_inputs, presence_valid_mask
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.trainer import Trainer

CONFIGS = {"graph": "configs/pretrain_gnn.yaml", "transformer": "configs/pretrain_transformer.yaml"}


def build_batches(files: list[str], *, batch_size: int, count: int) -> list:
    """Build ``count`` batches of ``batch_size`` events from the files, with a freshly fitted standardiser."""
    schema = load_schema("besiii")
    standardizer = Standardizer.from_schema(schema).fit(iterate_chunks(files, schema))
    dataset = EventDataset(files, schema, standardizer, split="all", batch_size=batch_size, shuffle_buffer=0, drop_last=True)
    batches = []
    for batch in dataset:
        batches.append(batch)
        if len(batches) == count:
            break
    if not batches:
        raise SystemExit(f"No full batch of {batch_size} events in {files}. Lower --batch-size or pass more events.")
    return batches


def measure(kind: str, precision: str, batches: list, *, steps: int, warmup: int) -> tuple[float, float, int]:
    """Return the median events per wall second and per process CPU second after warm-up, and the parameter count."""
    schema = load_schema("besiii")
    config = apply_overrides(load_config(PretrainConfig, CONFIGS[kind]), {"precision": precision, "epochs": 1, "log_every": 1, "device": "cpu"})
    spec = ModelInputSpec.from_schema(schema)
    torch.manual_seed(0)
    online, target = build_pretrain_model(config, spec)
    context = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), initialized=False)

    # the trainer requests the next batch right after each step, so the CPU time between two
    # requests is one step (the shared machine's load changes wall time, not process CPU time)
    cpu_stamps: list[float] = []

    def source(epoch: int):
        for batch in batches:
            cpu_stamps.append(time.process_time())
            yield batch

    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            config=config,
            online=online,
            target=target,
            batches=source,
            steps_per_epoch=warmup + steps,
            run_dir=run_dir,
            reconstruction=ReconstructionLoss(groups=schema.feature_groups, categorical_names=schema.categorical_names),
            valid_mask=presence_valid_mask(schema),
            context=context,
        )
        trainer.fit()
        cpu_stamps.append(time.process_time())
        wall_rates = [record["events_per_s"] for record in read_metrics(Path(run_dir) / "metrics.jsonl") if record["kind"] == "step"]

    sizes = [int(batches[index % len(batches)].num_graphs) for index in range(warmup + steps)]
    cpu_rates = [size / (end - start) for size, start, end in zip(sizes, cpu_stamps, cpu_stamps[1:])]
    return statistics.median(wall_rates[warmup:]), statistics.median(cpu_rates[warmup:]), count_parameters(online.encoder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="ROOT files or folders of BESIII-format events.")
    parser.add_argument("--batch-size", type=int, default=128, help="Events per batch.")
    parser.add_argument("--steps", type=int, default=8, help="Measured steps per setting.")
    parser.add_argument("--warmup", type=int, default=2, help="Unmeasured steps before them.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default.")
    parser.add_argument("--append", action="store_true", help="Append the rows to benchmarks/RESULTS.md.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    batches = build_batches(_expand_inputs(args.data), batch_size=args.batch_size, count=4)
    rows = []
    for kind in ("graph", "transformer"):
        for precision in ("fp32", "bf16"):
            started = time.perf_counter()
            wall_rate, cpu_rate, parameters = measure(kind, precision, batches, steps=args.steps, warmup=args.warmup)
            rows.append((kind, precision, parameters, wall_rate, cpu_rate))
            print(f"{kind:12s} {precision:5s} {parameters:>10,d} params  {wall_rate:8.0f} events/s  {cpu_rate:8.0f} events/CPU-s")

    if args.append:
        command = f"benchmarks/bench_pretrain.py --batch-size {args.batch_size} --steps {args.steps} --warmup {args.warmup}" + (f" --threads {args.threads}" if args.threads else "")
        machine = f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), CPU"
        lines = [
            "",
            f"## Pretraining step, fp32 against bf16 autocast ({datetime.date.today()}, {machine})",
            "",
            f"Command: `{command}` on events from `pmse-graph simulate` (see the script's docstring). Median",
            "events/s of full optimiser steps (masked online view, EMA target, reconstruction + SupCon,",
            "backward, AdamW, EMA update) on batches kept in memory. Events per CPU second is the steadier",
            "figure on a shared machine, and equals the wall rate only with one thread on an idle core.",
            "",
            "| encoder | precision | parameters | events/s (wall) | events per CPU second |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {kind} | {precision} | {parameters:,} | {wall:,.0f} | {cpu:,.0f} |" for kind, precision, parameters, wall, cpu in rows]
        with open(Path(__file__).resolve().parent / "RESULTS.md", "a") as stream:
            stream.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
