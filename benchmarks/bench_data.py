"""Benchmark of the data path: ROOT file to batched particle graphs on one CPU core.

Run:
    .venv/bin/python benchmarks/bench_data.py --events 200000
    .venv/bin/python benchmarks/bench_data.py --events 1000000 --append   # the 1M-event memory run

The script writes a synthetic BESIII-format ntuple (about ten particles per
event, every branch of the BESIII schema) under benchmarks/output/. It then
times three passes with ``torch.set_num_threads(1)``. The first is the bare
uproot read of the branches, the second the reader (uproot plus conversion into
EventChunks), the third the reader plus ``build_batch`` into PyG batches. Rates use the CPU time of the process
(``time.process_time``), not wall time. It prints a table and, with --append,
adds a row to its table in benchmarks/RESULTS.md. Peak RSS is the process maximum
(``ru_maxrss``), so compare it between runs with different --events.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import platform
import resource
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch
import uproot

from pmse_graph.benchmark.provenance import provenance
from pmse_graph.config import atomic_write_text
from pmse_graph.data.graphs import build_batch
from pmse_graph.data.reader import iterate_chunks
from pmse_graph.data.schema import load_schema
from pmse_graph.data.standardize import Standardizer

OUTPUT = Path(__file__).resolve().parent / "output"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
INT_BRANCHES = {"q", "pid_prob_type", "emc_numHits", "muc_numLayer", "muc_maxHitsInlater", "muc_dof", "muc_numHits"}


def synthetic_block(rng: np.random.Generator, num_events: int, first_event: int, mean_particles: float) -> dict:
    """Generate random BESIII-format events, charged tracks first and 9999 where a sub-detector has no information."""
    schema = load_schema("besiii")
    counts = np.clip(rng.poisson(mean_particles, num_events), 1, 40)
    charged_counts = rng.binomial(counts, 0.45)
    num = int(counts.sum())
    event_of = np.repeat(np.arange(num_events), counts)
    rank = np.arange(num) - np.repeat(np.cumsum(counts) - counts, counts)
    charged = rank < charged_counts[event_of]
    muc_hit = charged & (rng.random(num) < 0.1)
    has_shower = ~charged | (rng.random(num) < 0.7)

    p3 = rng.normal(0.0, 0.4, (num, 3))
    direction = p3 / np.linalg.norm(p3, axis=1, keepdims=True)
    shower_energy = rng.exponential(0.2, num) + 0.02
    values = {
        "q": np.where(charged, rng.choice([-1, 1], num), 0),
        "mdc_p3_px": p3[:, 0], "mdc_p3_py": p3[:, 1], "mdc_p3_pz": p3[:, 2],
        "vz0": rng.normal(0, 2, num), "vr0": np.abs(rng.normal(0, 0.3, num)),
        "pid_prob_type": rng.integers(0, 5, num),
        "emc_numHits": rng.integers(1, 30, num), "emc_e3x3": 0.8 * shower_energy, "emc_e5x5": 0.95 * shower_energy,
        "emc_energy": shower_energy, "emc_x": 94 * direction[:, 0], "emc_y": 94 * direction[:, 1], "emc_z": 94 * direction[:, 2],
        "emc_time": rng.uniform(0, 14, num), "EoP": shower_energy / np.linalg.norm(p3, axis=1),
        "emc_secmom": rng.exponential(10, num), "emc_latmom": rng.uniform(0, 1, num),
        "muc_dpt": rng.uniform(0, 60, num), "muc_numLayer": rng.integers(1, 9, num), "muc_maxHitsInlater": rng.integers(1, 4, num),
        "muc_chisq": rng.exponential(5, num), "muc_dof": rng.integers(1, 10, num), "muc_numHits": rng.integers(1, 20, num),
    }
    group_of = {feature.name: feature.group for feature in schema.features}
    fields = {}
    for name, flat in values.items():
        flat = flat.astype(np.float64)
        group = group_of[name]
        if group in ("kinematics", "pid") and name != "q":
            flat[~charged] = 9999
        if group == "emc":
            flat[~has_shower] = 9999
        if name == "EoP":
            flat[~charged] = 9999
        if group == "muc":
            flat[~muc_hit] = 9999
        fields[name] = ak.unflatten(flat.astype(np.int32 if name in INT_BRANCHES else np.float32), counts)
    n_charged = charged_counts.astype(np.int32)
    return {
        "run": np.full(num_events, 1, np.int32), "event": np.arange(first_event, first_event + num_events, dtype=np.int64),
        "nCharged": n_charged, "nNeutral": (counts - n_charged).astype(np.int32),
        "nGoodCharged": n_charged, "nGoodNeutral": (counts - n_charged).astype(np.int32),
        "topo_tree_id": rng.integers(0, 100, num_events).astype(np.int32),
        "topo_fs_id": rng.integers(0, 30, num_events).astype(np.int32),
        "tracks": ak.zip(fields),
    }


def write_file(path: Path, num_events: int, mean_particles: float, block: int = 10_000) -> None:
    """Write the synthetic ntuple in blocks of ``block`` events, each block one basket per branch.

    Small baskets keep the reader's memory independent of the file size, because uproot
    decompresses whole baskets.
    """
    rng = np.random.default_rng(12345)
    tmp = path.with_suffix(".tmp")
    with uproot.recreate(tmp) as handle:
        for start in range(0, num_events, block):
            arrays = synthetic_block(rng, min(block, num_events - start), start, mean_particles)
            if start == 0:
                handle.mktree("evt", {name: value.type if isinstance(value, ak.Array) else value.dtype for name, value in arrays.items()},
                              counter_name=lambda counted: "nTracks", field_name=lambda outer, inner: inner)
            handle["evt"].extend(arrays)
    tmp.rename(path)


def clock() -> float:
    """Return the CPU seconds of this process, which vary less than wall time on a shared machine."""
    return time.process_time()


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SECTION = "## Data path: ROOT file to graph batches"


def insert_row(line: str) -> None:
    """Add ``line`` at the end of this benchmark's table in RESULTS.md; other sections stay as they are."""
    lines = RESULTS.read_text().splitlines(keepends=True) if RESULTS.exists() else []
    start = next((i for i, text in enumerate(lines) if text.startswith(SECTION)), None)
    if start is None:
        raise SystemExit(f"section '{SECTION}' not found in {RESULTS}; add its heading and table header first")
    end = start + 1
    while end < len(lines) and not lines[end].startswith("## "):
        end += 1
    last_row = max(i for i in range(start, end) if lines[i].startswith("|"))
    lines.insert(last_row + 1, line)
    atomic_write_text(RESULTS, "".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the synthetic file")
    parser.add_argument("--particles", type=float, default=10.0, help="mean particles per event")
    parser.add_argument("--step-size", type=int, default=100_000, help="entries per read step")
    parser.add_argument("--batch-size", type=int, default=1024, help="events per graph batch")
    parser.add_argument("--append", action="store_true", help="add the result row to this benchmark's table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"besiii_synthetic_{args.events}_{args.particles:g}_b10k.root"
    if not path.exists():
        # a separate process writes the file, so its memory does not count in this one's peak RSS
        started = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(target=write_file, args=(path, args.events, args.particles))
        writer.start()
        writer.join()
        if writer.exitcode != 0:
            raise SystemExit(f"writing {path} failed with exit code {writer.exitcode}")
        print(f"wrote {path} in {time.perf_counter() - started:.1f} s (wall)")
    schema = load_schema("besiii")
    rss_before = peak_rss_mib()

    # 1. bare uproot read of the same branches
    started = clock()
    with uproot.open(path) as handle:
        for _ in handle["evt"].iterate(schema.all_branches(), step_size=args.step_size, library="ak"):
            pass
    uproot_s = clock() - started

    # 2. reader: uproot plus conversion to EventChunks (the first chunk also fits the standardiser)
    standardizer = Standardizer.from_schema(schema).fit(iterate_chunks(path, schema, step_size=args.step_size), max_events=args.step_size)
    started = clock()
    particles = 0
    for chunk in iterate_chunks(path, schema, step_size=args.step_size):
        particles += chunk.num_nodes
    reader_s = clock() - started

    # 3. reader plus graph batches
    started, wall_started = clock(), time.perf_counter()
    build_s, events, edges = 0.0, 0, 0
    for chunk in iterate_chunks(path, schema, step_size=args.step_size):
        begin = clock()
        for start in range(0, chunk.num_events, args.batch_size):
            batch = build_batch(chunk.slice(start, start + args.batch_size), standardizer, schema=schema)
            events += batch.num_graphs
            edges += batch.edge_index.shape[1]
        build_s += clock() - begin
    total_s = clock() - started
    wall_s = time.perf_counter() - wall_started
    rss = peak_rss_mib()

    row = {
        "events": events, "particles/event": particles / max(events, 1), "edges/event": edges / max(events, 1),
        "uproot read ev/s": events / uproot_s, "reader ev/s": events / reader_s,
        "graph build ev/s": events / build_s, "end-to-end ev/s": events / total_s, "end-to-end wall ev/s": events / wall_s,
        "peak RSS MiB": rss, "RSS before reading MiB": rss_before,
    }
    print("| " + " | ".join(row) + " |")
    print("| " + " | ".join(f"{v:,.0f}" if isinstance(v, (int, float)) and v > 100 else f"{v:.1f}" for v in row.values()) + " |")

    if args.append:
        date = datetime.date.today().isoformat()
        machine = f"{platform.machine()}, {torch.get_num_threads()} torch thread; {provenance()}"
        command = f"benchmarks/bench_data.py --events {args.events} --particles {args.particles:g} --step-size {args.step_size} --batch-size {args.batch_size}"
        line = (f"| {date} | {machine} | `{command}` | {events:,} | {row['particles/event']:.1f} | {row['uproot read ev/s']:,.0f} | "
                f"{row['reader ev/s']:,.0f} | {row['graph build ev/s']:,.0f} | {row['end-to-end ev/s']:,.0f} | {row['end-to-end wall ev/s']:,.0f} | {rss:,.0f} |\n")
        insert_row(line)
        print(f"added a row to {RESULTS}")


if __name__ == "__main__":
    main()
