"""Time TopoAna labelling and class ranking on the real BESIII truth files.

Run:
    .venv/bin/python benchmarks/bench_topology.py --classes 17424 50000 --append

Labels the 100,000 events of ../shared/data/topoana/jpsi{1,2}.root (repeated N
times), ranks them, and times both tie orders of the ranking on synthetic
Zipf-like class counts. Prints a table and, with --append, adds it to
benchmarks/RESULTS.md. Times are wall-clock seconds of one process.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pmse_graph.benchmark.provenance import provenance
from pmse_graph.topology.table import TopologyTable, rank_order
from pmse_graph.topology.tree import label_events

ROOT = Path(__file__).resolve().parents[1]
TOPOANA = ROOT.parent / "shared" / "data" / "topoana"


def synthetic_counts(num_classes: int, seed: int = 0) -> np.ndarray:
    """Zipf-like counts (exponent 1.1, at least 1), loosely ordered by frequency as first appearance is."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, num_classes + 1)
    counts = np.maximum(1, 2e5 / ranks**1.1).astype(np.int64)
    return counts[np.argsort(ranks + rng.normal(0.0, 0.2 * num_classes, num_classes))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="Copies of the 100,000 real events to label.")
    parser.add_argument("--classes", type=int, nargs="*", default=[17_424, 50_000], help="Class counts for the ranking timing.")
    parser.add_argument("--append", action="store_true", help="Append the table to benchmarks/RESULTS.md.")
    args = parser.parse_args()

    parts = [uproot.open(TOPOANA / name)["evt"].arrays(["Pid", "Midx"]) for name in ("jpsi1.root", "jpsi2.root")]
    truth = ak.concatenate(parts * args.repeat)
    rows = []

    start = time.perf_counter()
    labels = label_events(truth.Pid, truth.Midx)
    label_seconds = time.perf_counter() - start
    start = time.perf_counter()
    table = TopologyTable.from_labels(labels.tree, labels.final_state)
    rank_seconds = time.perf_counter() - start
    rows.append((f"label_events, {len(truth)} real events", f"{label_seconds:.2f}", f"{len(truth) / label_seconds:,.0f} events/s, {labels.num_distinct_records} distinct records"))
    rows.append((f"TopologyTable.from_labels, {len(table)} trees", f"{rank_seconds:.2f}", "tie order topoana"))

    for num_classes in args.classes:
        counts = synthetic_counts(num_classes)
        for tie_order in ("topoana", "first_seen"):
            start = time.perf_counter()
            rank_order(counts, tie_order=tie_order)
            seconds = time.perf_counter() - start
            rows.append((f"rank_order, {num_classes} synthetic classes ({int((counts > 1).sum())} above 1)", f"{seconds:.2f}", f"tie order {tie_order}"))

    lines = ["| step | seconds | note |", "|---|---|---|"] + [f"| {step} | {seconds} | {note} |" for step, seconds, note in rows]
    print("\n".join(lines))
    if args.append:
        command = "python benchmarks/bench_topology.py " + " ".join(sys.argv[1:])
        header = f"\n## Topology labels and ranking ({datetime.date.today()}, {provenance()})\n\nCommand: `{command.strip()}`\n\n"
        with (ROOT / "benchmarks" / "RESULTS.md").open("a") as stream:
            stream.write(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
