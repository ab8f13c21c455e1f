"""Pretraining step throughput and peak memory: both encoders at matched size, fp32 or bf16, eager or compiled.

    pmse-graph simulate --events 3000 --seed 5 --out sim/ \
        --truth-trees ../shared/data/topoana/jpsi1.root --particle-table ../shared/data/decay/pdt.table
    python benchmarks/bench_pretrain.py --data sim/ --batch-size 128 --steps 8 --append
    python benchmarks/bench_pretrain.py --data sim/ --batch-size 64 --steps 4 --kinds graph --precisions fp32 --compile --append

One step is what ``pmse-graph pretrain`` runs: masking, the online encoder on the masked view,
the EMA target on the unmasked view, reconstruction + SupCon losses, backward, gradient
clipping, AdamW and the EMA update, through :class:`~pmse_graph.pretraining.trainer.Trainer`.
Batches are built once from the given ROOT files and kept in memory, so the figures leave out
reading.

The graph encoder takes its size from ``configs/pretrain_gnn.yaml``. The transformer takes the
rest of ``configs/pretrain_transformer.yaml`` with the width that
:func:`~pmse_graph.models.match_transformer_width` picks, so both have about the same number of
parameters.

Timing: the wall clock and the process CPU clock are both read when the trainer requests its
next batch, so both rates cover the same interval: one step plus its logging. The first
``--warmup`` steps are left out of the medians and reported as "warm-up s" (with
``--compile`` that is where compilation happens). Every setting runs in a fresh Python process,
so that memory the allocator kept from one setting does not hide the next one's. Peak memory is
the growth of that process's peak resident set (VmHWM, reset after the batches are built) on
the CPU, and ``torch.cuda.max_memory_allocated`` on a GPU. ``--append`` adds the rows to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pmse_graph.config import apply_overrides, load_config
from pmse_graph.data.dataset import EventDataset
from pmse_graph.benchmark.provenance import provenance
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer
from pmse_graph.data.validate import expand_files
from pmse_graph.models import ModelInputSpec, count_parameters, match_transformer_width
from pmse_graph.pretraining.config import PretrainConfig
from pmse_graph.pretraining.distributed import DistributedContext
from pmse_graph.pretraining.losses.reconstruction import ReconstructionLoss
from pmse_graph.pretraining.model import build_pretrain_model
from pmse_graph.pretraining.run import presence_valid_mask
from pmse_graph.pretraining.trainer import Trainer

CONFIGS = {"graph": "configs/pretrain_gnn.yaml", "transformer": "configs/pretrain_transformer.yaml"}
ROOT = Path(__file__).resolve().parent.parent


def build_batches(files: list[str], *, batch_size: int, count: int) -> list:
    """Build ``count`` batches of ``batch_size`` events from the files, with a freshly fitted standardiser."""
    schema = load_schema("besiii")
    standardizer = Standardizer.from_schema(schema).fit(iterate_chunks(files, schema))
    dataset = EventDataset(files, schema, standardizer, split="all", batch_size=batch_size, shuffle_buffer=0, drop_last=True)
    batches = list(itertools.islice(iter(dataset), count))
    if not batches:
        raise SystemExit(f"No full batch of {batch_size} events in {files}. Lower --batch-size or pass more events.")
    return batches


def matched_configs(spec: ModelInputSpec) -> dict[str, PretrainConfig]:
    """Return the shipped graph config and the transformer config resized to the graph encoder's parameter count."""
    graph = load_config(PretrainConfig, ROOT / CONFIGS["graph"])
    transformer = load_config(PretrainConfig, ROOT / CONFIGS["transformer"])
    encoder = match_transformer_width(graph.encoder, spec, transformer=transformer.encoder)
    return {"graph": graph, "transformer": transformer.model_copy(update={"encoder": encoder})}


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_memory(device: torch.device) -> int | None:
    """Reset the peak-memory counter; return the current CPU resident set in KiB (None on a GPU or without /proc)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return None
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    except OSError:
        return None
    return _rss_kib("VmRSS")


def peak_memory_mib(device: torch.device, baseline_kib: int | None) -> float | None:
    """Peak memory since :func:`reset_peak_memory`, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = _rss_kib("VmHWM")
    if peak is None or baseline_kib is None:
        return None
    return (peak - baseline_kib) / 1024


def measure(config: PretrainConfig, batches: list, *, steps: int, warmup: int, device: torch.device) -> dict:
    """Run ``warmup + steps`` measured steps and return rates, warm-up time, peak memory and parameters."""
    schema = load_schema("besiii")
    spec = ModelInputSpec.from_schema(schema)
    baseline = reset_peak_memory(device)
    torch.manual_seed(0)
    online, target = build_pretrain_model(config, spec)
    context = DistributedContext(rank=0, world_size=1, local_rank=0, device=device, initialized=False)

    # one stamp per batch request: the interval between two requests is one step plus its logging
    wall_stamps: list[float] = []
    cpu_stamps: list[float] = []
    total = warmup + steps + 1  # the last step only closes the interval of the one before

    def source(epoch: int):
        for index in range(total):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            wall_stamps.append(time.perf_counter())
            cpu_stamps.append(time.process_time())
            yield batches[index % len(batches)]

    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            config=config,
            online=online,
            target=target,
            batches=source,
            steps_per_epoch=total,
            run_dir=run_dir,
            reconstruction=ReconstructionLoss(groups=schema.feature_groups, categorical_names=schema.categorical_names),
            valid_mask=presence_valid_mask(schema),
            context=context,
        )
        trainer.fit()
    memory = peak_memory_mib(device, baseline)

    sizes = [int(batches[index % len(batches)].num_graphs) for index in range(total)]
    wall = [end - start for start, end in zip(wall_stamps, wall_stamps[1:])]
    cpu = [end - start for start, end in zip(cpu_stamps, cpu_stamps[1:])]
    return {
        "parameters": count_parameters(online.encoder),
        "wall_rate": statistics.median(size / seconds for size, seconds in zip(sizes[warmup:], wall[warmup:])),
        "cpu_rate": statistics.median(size / seconds for size, seconds in zip(sizes[warmup:], cpu[warmup:])),
        "warmup_s": sum(wall[:warmup]),
        "step_ms": 1000 * statistics.median(wall[warmup:]),
        "peak_mib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="ROOT files or folders of BESIII-format events.")
    parser.add_argument("--batch-size", type=int, default=128, help="Events per batch.")
    parser.add_argument("--steps", type=int, default=8, help="Measured steps per setting.")
    parser.add_argument("--warmup", type=int, default=2, help="Unmeasured steps before them (compilation happens here).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default.")
    parser.add_argument("--kinds", default="graph,transformer", help="Comma-separated encoders to measure.")
    parser.add_argument("--precisions", default="fp32,bf16", help="Comma-separated precisions to measure.")
    parser.add_argument("--compile", action="store_true", help="Measure every setting eager and with torch.compile.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="Device of the steps.")
    parser.add_argument("--append", action="store_true", help="Append the rows to benchmarks/RESULTS.md.")
    parser.add_argument("--one-setting", help=argparse.SUPPRESS)  # KIND:PRECISION:on|off, run in a child process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.one_setting:
        kind, precision, compiled = args.one_setting.split(":")
        batches = build_batches(expand_files(args.data), batch_size=args.batch_size, count=4)
        config = apply_overrides(
            matched_configs(ModelInputSpec.from_schema(load_schema("besiii")))[kind],
            {"precision": precision, "compile": compiled == "on", "epochs": 1, "log_every": 1, "device": args.device},
        )
        result = measure(config, batches, steps=args.steps, warmup=args.warmup, device=device)
        print("RESULT " + json.dumps({**result, "width": config.encoder.width}), flush=True)
        return

    rows = []
    for kind in args.kinds.split(","):
        for precision in args.precisions.split(","):
            for compiled in ("off", "on") if args.compile else ("off",):
                child = [sys.executable, __file__, "--data", *args.data, "--batch-size", str(args.batch_size), "--steps", str(args.steps),
                         "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", args.device,
                         "--one-setting", f"{kind}:{precision}:{compiled}"]
                finished = subprocess.run(child, stdout=subprocess.PIPE, text=True, check=True)
                result = json.loads(next(line for line in finished.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
                memory = f"{result['peak_mib']:,.0f}" if result["peak_mib"] is not None else "n/a"
                row = {"kind": kind, "precision": precision, "compile": compiled, **result, "memory": memory}
                rows.append(row)
                print(
                    f"{kind:12s} {precision:5s} compile {row['compile']:3s} width {row['width']:4d} {row['parameters']:>10,d} params "
                    f"{row['wall_rate']:8.0f} events/s {row['cpu_rate']:8.0f} events/CPU-s {row['step_ms']:8.1f} ms/step "
                    f"warm-up {row['warmup_s']:6.1f} s  peak {memory} MiB",
                    flush=True,
                )

    if args.append:
        command = (
            f"benchmarks/bench_pretrain.py --batch-size {args.batch_size} --steps {args.steps} --warmup {args.warmup}"
            f" --kinds {args.kinds} --precisions {args.precisions}"
        )
        if args.compile:
            command += " --compile"
        if args.threads:
            command += f" --threads {args.threads}"
        if args.device != "cpu":
            command += f" --device {args.device}"
        hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        machine = f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), {hardware}, torch {torch.__version__}; {provenance()}"
        lines = [
            "",
            f"## Pretraining step at matched size ({datetime.date.today()}, {machine})",
            "",
            f"Command: `{command}` on events from `pmse-graph simulate` (see the script's docstring).",
            "Median over the measured steps of full optimiser steps (masked online view, EMA target,",
            "reconstruction + SupCon, backward, AdamW, EMA update) on batches kept in memory. Wall and",
            "CPU rates time the same interval (one step and its logging); warm-up s is the wall time of",
            "the warm-up steps, where compilation happens. Peak memory: growth of the peak resident set",
            "(CPU) or peak allocated memory (GPU) during the setting.",
            "",
            "| encoder | precision | compile | width | parameters | events/s (wall) | events per CPU second | ms/step (wall) | warm-up s | peak memory MiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['kind']} | {row['precision']} | {row['compile']} | {row['width']} | {row['parameters']:,} | {row['wall_rate']:,.0f} | "
            f"{row['cpu_rate']:,.0f} | {row['step_ms']:,.1f} | {row['warmup_s']:,.1f} | {row['memory']} |"
            for row in rows
        ]
        with open(Path(__file__).resolve().parent / "RESULTS.md", "a") as stream:
            stream.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
