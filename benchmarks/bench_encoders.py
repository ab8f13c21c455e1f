"""Benchmark the graph encoder against the transformer baseline at matched parameter count.

Run:
    .venv/bin/python benchmarks/bench_encoders.py                      # 512 events, CPU, fp32 and bf16
    .venv/bin/python benchmarks/bench_encoders.py --events 128 --steps 3 --no-append   # quick check
    .venv/bin/python benchmarks/bench_encoders.py --device cuda        # on a GPU
    .venv/bin/python benchmarks/bench_encoders.py --encoders "graph (dense)" transformer

Run it from the repository root after ``make install``.

The encoders are the graph encoder (sparse and dense attention paths), the transformer
at the width that matches the graph encoder's parameter count, and the transformer
with pair bias. For each encoder, precision (fp32, bf16 autocast) and mode (train: forward + backward;
infer: forward under ``torch.no_grad``) it times ``--steps`` steps after ``--warmup``
steps on one fixed batch of random events with 2 to 19 particles, fully connected
with pair features, and reports the median events/s and the peak memory. Each case
runs in a fresh process, so that the peak resident memory on the CPU belongs to that
case alone. It prints a table and appends rows to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import multiprocessing
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_batch

from pmse_graph.benchmark.provenance import provenance
from pmse_graph.models import EncoderConfig, ModelInputSpec, build_encoder, count_parameters, match_transformer_width
from pmse_graph.physics.kinematics import pair_features

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

# BESIII-like sizes: 12 continuous columns, then charge and PID type as categorical features
SPEC = ModelInputSpec(
    num_node_features=12,
    categorical_cardinalities=(4, 6),
    num_edge_features=5,
    categorical_names=("charge", "pid_type"),
)


def random_batch(*, num_events: int, min_particles: int, max_particles: int, seed: int) -> Batch:
    """Build one batch of fully connected random events, vectorised over events."""
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.randint(min_particles, max_particles + 1, (num_events,), generator=generator)
    node_graph = torch.repeat_interleave(torch.arange(num_events), sizes)
    num_nodes = int(sizes.sum())
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])

    # all ordered pairs (i, j), i != j, within each event
    _, is_particle = to_dense_batch(torch.zeros(num_nodes, 1), node_graph, batch_size=num_events)  # (B, N)
    eye = torch.eye(is_particle.shape[1], dtype=torch.bool)
    graph, source, target = (is_particle[:, :, None] & is_particle[:, None, :] & ~eye).nonzero(as_tuple=True)
    edge_index = torch.stack([ptr[graph] + source, ptr[graph] + target])

    p3 = torch.randn(num_nodes, 3, generator=generator) * 0.5
    mass = torch.full((num_nodes,), 0.13957)
    x = torch.randn(num_nodes, SPEC.num_node_features, generator=generator)
    x_cat = torch.stack([torch.randint(0, c, (num_nodes,), generator=generator) for c in SPEC.categorical_cardinalities], 1)
    edge_attr = pair_features(p3[edge_index[0]], p3[edge_index[1]], mass[edge_index[0]], mass[edge_index[1]]).float()
    cond = torch.randint(0, 20, (num_events, 4), generator=generator)
    return Batch(x=x, x_cat=x_cat, edge_index=edge_index, edge_attr=edge_attr, cond=cond, batch=node_graph, ptr=ptr)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak resident memory on the CPU (Linux: KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(args: argparse.Namespace, config: EncoderConfig, precision: str, mode: str, queue) -> None:
    """Time one (encoder, precision, mode) case and put a result row on ``queue``."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    device = torch.device(args.device)
    batch = random_batch(num_events=args.events, min_particles=2, max_particles=19, seed=1).to(device)
    encoder = build_encoder(config, SPEC).to(device).train(mode == "train")
    node_mask = torch.rand(batch.num_nodes, device=device) < 0.15
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    baseline_mb = peak_memory_mb(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    durations, cpu_durations = [], []
    for step in range(args.warmup + args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        if mode == "train":
            with autocast:
                output = encoder(batch, node_mask=node_mask)
                loss = output.node_states.float().square().mean() + output.event_embedding.float().square().mean()
            loss.backward()
            encoder.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), autocast:
                encoder(batch, node_mask=node_mask)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            durations.append(time.perf_counter() - start)
            cpu_durations.append(time.process_time() - cpu_start)

    peak = peak_memory_mb(device)
    queue.put(
        {
            "encoder": config.kind,
            "width": config.width,
            "parameters": count_parameters(encoder),
            "precision": precision,
            "mode": mode,
            "events_per_s": args.events / statistics.median(durations),
            # CPU time counts every thread, so this rate moves less than the wall rate when the
            # machine is shared, but it is lower than the wall rate by up to the thread count
            "events_per_cpu_s": args.events / statistics.median(cpu_durations),
            # on a GPU the peak allocated during the steps, on the CPU the growth of the peak resident set
            "peak_mb": peak if device.type == "cuda" else peak - baseline_mb,
        }
    )


ENCODER_LABELS = ("graph (sparse)", "graph (dense)", "transformer", "transformer + pair bias")


def encoder_label(config: EncoderConfig) -> str:
    if config.kind == "graph":
        return f"graph ({config.graph_attention})"
    return "transformer + pair bias" if config.pair_bias else "transformer"


def torch_scatter_version() -> str:
    """Return the installed torch-scatter version, or "not installed" (PyG then uses torch's own scatter)."""
    try:
        return "torch-scatter " + importlib.metadata.version("torch-scatter")
    except importlib.metadata.PackageNotFoundError:
        return "torch-scatter not installed"


def machine_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, torch {torch.__version__}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=512, help="events per batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps, whose median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--width", type=int, default=128, help="graph encoder width (the transformer width is matched to its parameter count)")
    parser.add_argument("--depth", type=int, default=4, help="residual blocks of both encoders")
    parser.add_argument("--heads", type=int, default=8, help="attention heads of both encoders")
    parser.add_argument("--device", default="cpu", help="torch device, for example cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 keeps the torch default)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"], help="fp32, or bf16 autocast")
    parser.add_argument("--encoders", nargs="+", default=list(ENCODER_LABELS), choices=ENCODER_LABELS, help="encoders to time")
    parser.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"], help="train (forward and backward) or infer (forward only)")
    parser.add_argument("--no-append", action="store_true", help=f"print the table without appending to {RESULTS.name}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # the machine may be shared, and a high load average marks figures that are not trustworthy
    args.load_before = os.getloadavg()[0]
    graph = EncoderConfig(kind="graph", width=args.width, depth=args.depth, heads=args.heads)
    transformer = match_transformer_width(graph, SPEC)
    candidates = [
        graph,
        graph.model_copy(update={"graph_attention": "dense"}),
        transformer,
        transformer.model_copy(update={"pair_bias": True}),
    ]
    configs = [config for config in candidates if encoder_label(config) in args.encoders]

    context = multiprocessing.get_context("spawn")
    rows = []
    for config in configs:
        for precision in args.precisions:
            for mode in args.modes:
                queue = context.Queue()
                process = context.Process(target=run_case, args=(args, config, precision, mode, queue))
                process.start()
                row = queue.get()
                process.join()
                row["encoder"] = encoder_label(config)
                rows.append(row)
                print(
                    f"{row['encoder']:<26} width {row['width']:>4} {row['parameters']:>9,d} params "
                    f"{precision:>4} {mode:>5}: {row['events_per_s']:>9,.0f} events/s, {row['events_per_cpu_s']:>9,.0f} events/CPU s, "
                    f"peak {row['peak_mb']:>7.1f} MB",
                    flush=True,
                )

    if not args.no_append:
        append_results(rows, args)


def append_results(rows: list[dict], args: argparse.Namespace) -> None:
    command = shlex.join(["python", "benchmarks/bench_encoders.py", *sys.argv[1:]])
    header = [
        f"\n## Encoders, {dt.date.today().isoformat()}, {machine_name(args.device)}, {torch_scatter_version()}; {provenance()}",
        f"`{command.strip()}`: {args.events} events of 2-19 particles (fully connected), depth {args.depth}, "
        f"{args.heads} heads, 15% of particles masked, median of {args.steps} steps after {args.warmup} warm-up steps. "
        f"Load average (1 min) before the run: {args.load_before:.1f}, after: {os.getloadavg()[0]:.1f}.",
        "",
        "| encoder | width | parameters | precision | mode | events/s (wall) | events per CPU second | peak memory MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines = [
        f"| {r['encoder']} | {r['width']} | {r['parameters']:,} | {r['precision']} | {r['mode']} | "
        f"{r['events_per_s']:,.0f} | {r['events_per_cpu_s']:,.0f} | {r['peak_mb']:.0f} |"
        for r in rows
    ]
    if not RESULTS.exists():
        header.insert(0, "# Benchmark results\n\nRows appended by the scripts in this folder; each block names its command.")
    with RESULTS.open("a") as stream:
        stream.write("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
