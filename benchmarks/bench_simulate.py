"""Benchmark of ``pmse-graph simulate`` on one CPU core: events per second, where time goes, peak memory.

Run:
    .venv/bin/python benchmarks/bench_simulate.py --events 20000
    .venv/bin/python benchmarks/bench_simulate.py --events 200000 --append   # the recorded run
    .venv/bin/python benchmarks/bench_simulate.py --events 100000 --plot     # the class-frequency plot

The script pins itself to one core with one BLAS thread and runs the generator with the
default decay model and the BESIII detector response into benchmarks/output/simulate/. It
reports the rate over CPU time (``time.process_time``) and over wall time, the seconds of each
stage (template draws, labels, kinematics, detector response, writing) and the peak resident
memory (``ru_maxrss``, the process maximum, imports included). With --append it adds a row to the
generator table of benchmarks/RESULTS.md. With --plot it writes
benchmarks/plots/simulate_class_frequency.png: decay-tree rank against events for the
first 100,000 generated events and for the 100,000 events of the real BESIII truth files, side
by side, both counted with the topology package's TopoAna labels.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from pmse_graph.benchmark.provenance import provenance  # noqa: E402
from pmse_graph.simulation.decay_model import DecayModel  # noqa: E402
from pmse_graph.simulation.detector import DetectorResponse  # noqa: E402
from pmse_graph.simulation.generator import SimulationConfig, simulate  # noqa: E402

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "output" / "simulate"
RESULTS = HERE / "RESULTS.md"
PLOT = HERE / "plots" / "simulate_class_frequency.png"
REAL_EVENTS = 100_000
"""Events in the real truth files jpsi1.root + jpsi2.root."""
SHARED_DATA = HERE.parent.parent / "shared" / "data"

SECTION = "## Event generator: `pmse-graph simulate`, one core (`benchmarks/bench_simulate.py`)"
TABLE_HEADER = (
    "| date | machine | command | events | CPU ev/s | wall ev/s | templates CPU s | labels CPU s "
    "| kinematics CPU s | detector CPU s | write CPU s | phase-space efficiency | peak RSS MiB |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
SECTION_TEXT = f"""{SECTION}

Default decay model (the LHCb J/psi table of decaylanguage plus the tuned remainder model),
BESIII detector response, zlib-compressed ROOT files. The process is pinned to one core with
one BLAS thread. "CPU ev/s" divides by the process CPU time and "wall ev/s" by the elapsed
time, which is lower whenever the shared machine is busy. Stage seconds are CPU seconds. Peak
RSS is the process maximum, imports included.

{TABLE_HEADER}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events to generate")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--chunk-size", type=int, default=20_000, help="events per generation step")
    parser.add_argument("--events-per-file", type=int, default=100_000, help="events per ROOT file")
    parser.add_argument("--compression", choices=["zlib", "none"], default="zlib", help="ROOT compression")
    parser.add_argument("--append", action="store_true", help="add a row to benchmarks/RESULTS.md")
    parser.add_argument("--plot", action="store_true", help="plot the class-frequency curve next to the real truth files")
    parser.add_argument("--keep", action="store_true", help="keep the generated files under benchmarks/output/simulate")
    args = parser.parse_args()
    if args.plot and args.events < REAL_EVENTS:
        parser.error(f"--plot compares equal samples: it needs --events {REAL_EVENTS} or more (the real truth files hold {REAL_EVENTS:,})")

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    logging.basicConfig(level=logging.WARNING)

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    model = DecayModel.from_dec_file()
    response = DetectorResponse.from_config()
    setup_seconds = time.perf_counter() - wall_start

    shutil.rmtree(OUTPUT, ignore_errors=True)
    config = SimulationConfig(
        num_events=args.events,
        seed=args.seed,
        chunk_size=args.chunk_size,
        events_per_file=args.events_per_file,
        compression=args.compression,
    )
    cpu_run = time.process_time()
    summary = simulate(model=model, response=response, config=config, out_dir=OUTPUT, progress=False)
    cpu_seconds = time.process_time() - cpu_run
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    stages = summary.stage_cpu_seconds
    rows = [
        ("events", f"{summary.num_events:,}"),
        ("model + detector set-up, s", f"{setup_seconds:.2f}"),
        ("CPU events/s", f"{summary.num_events / cpu_seconds:,.0f}"),
        ("wall events/s", f"{summary.events_per_second:,.0f}"),
        *((f"{name} CPU s", f"{seconds:.2f}") for name, seconds in stages.items()),
        ("phase-space efficiency", f"{summary.phase_space_efficiency:.3f}"),
        ("phase-space bound violations", str(summary.bound_violations)),
        ("decay-tree classes", f"{len(summary.table):,}"),
        ("peak RSS, MiB", f"{peak_mib:.0f}"),
        ("total CPU s (set-up included)", f"{time.process_time() - cpu_start:.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")

    if args.append:
        command = "benchmarks/bench_simulate.py " + " ".join(sys.argv[1:])
        row = (
            f"| {datetime.date.today().isoformat()} | {platform.machine()}, 1 core; {provenance()} | `{command.strip()}` | "
            f"{summary.num_events:,} | {summary.num_events / cpu_seconds:,.0f} | {summary.events_per_second:,.0f} | "
            f"{stages['templates']:.2f} | {stages['labels']:.2f} | {stages['kinematics']:.2f} | "
            f"{stages['detector']:.2f} | {stages['write']:.2f} | {summary.phase_space_efficiency:.3f} | {peak_mib:.0f} |"
        )
        append_row(row)
        print(f"Appended a row to {RESULTS}")
    if args.plot:
        plot_class_frequency(first_tree_counts(summary.paths, REAL_EVENTS))
        print(f"Wrote {PLOT}")
    if not args.keep:
        shutil.rmtree(OUTPUT, ignore_errors=True)


def append_row(row: str) -> None:
    """Insert ``row`` at the end of the generator table, creating the section when missing."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION not in text:
        text = text.rstrip("\n") + "\n\n" + SECTION_TEXT
    lines = text.splitlines()
    start = lines.index(SECTION)
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| date |"))
    end = header + 2
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines.insert(end, row)
    RESULTS.write_text("\n".join(lines) + "\n")


def first_tree_counts(paths: list[Path], num_events: int) -> np.ndarray:
    """Return the events per decay tree among the first ``num_events`` events of the files, most frequent first."""
    import uproot

    ids = []
    for path in paths:
        ids.append(uproot.open(path)["evt"]["topo_tree_id"].array(library="np"))
        if sum(part.shape[0] for part in ids) >= num_events:
            break
    counts = np.bincount(np.concatenate(ids)[:num_events])
    return np.sort(counts[counts > 0])[::-1]


def plot_class_frequency(generated_counts: np.ndarray) -> None:
    """Plot events per decay tree against rank for the generated sample and the real truth files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pmse_graph.topology.reader import count_topologies

    real_files = [SHARED_DATA / "topoana" / "jpsi1.root", SHARED_DATA / "topoana" / "jpsi2.root"]
    real = count_topologies(real_files, tree_name="evt", pid_branch="Pid", mother_branch="Midx").to_frame()["count"].to_numpy()

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for counts, label in ((generated_counts, "pmse-graph simulate"), (real, "BESIII inclusive MC truth")):
        fraction = np.cumsum(counts) / counts.sum()
        rank = np.arange(1, counts.shape[0] + 1)
        axes[0].loglog(rank, counts / counts.sum(), label=f"{label} ({counts.sum():,} events, {counts.shape[0]:,} trees)")
        axes[1].semilogx(rank, fraction, label=f"{label}: top-99 {fraction[min(98, fraction.shape[0] - 1)]:.0%}")
    axes[0].set(xlabel="decay-tree rank", ylabel="fraction of events", title="Events per decay tree")
    axes[1].set(xlabel="decay-tree rank", ylabel="cumulative fraction", title="Coverage of the top trees")
    for axis in axes:
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT, dpi=120)


if __name__ == "__main__":
    main()
