"""Time decay-tree template sampling (DecayModel.sample) on one core.

Run from the repository root:

    .venv/bin/python benchmarks/bench_decay_model.py                 # print the table
    .venv/bin/python benchmarks/bench_decay_model.py --append        # also append it to RESULTS.md

The first call meets most trees for the first time and builds their templates. Later calls
mostly look them up, as a long generator run does.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pmse_graph.benchmark.provenance import provenance  # noqa: E402
from pmse_graph.config import atomic_write_text  # noqa: E402
from pmse_graph.simulation.decay_model import DecayModel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="Time DecayModel.sample")
    parser.add_argument("--events", type=int, default=100_000, help="events per call")
    parser.add_argument("--calls", type=int, default=4, help="calls after the model is built")
    parser.add_argument("--dec-file", default=None, help="DEC table (default: decaylanguage's LHCb table)")
    parser.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()

    started = time.perf_counter()
    model = DecayModel.from_dec_file(args.dec_file, on_unknown="drop")
    build = time.perf_counter() - started
    rng = np.random.default_rng(1)
    rows = []
    for call in range(args.calls):
        started = time.process_time()
        model.sample(args.events, rng)
        seconds = time.process_time() - started
        rows.append((call, seconds, len(model.catalogue)))
    print(f"model built in {build:.2f} s (DEC parsing included)")
    print(f"{'call':>4s} {'CPU s':>7s} {'events/s':>10s} {'templates':>10s}")
    for call, seconds, templates in rows:
        print(f"{call:4d} {seconds:7.3f} {args.events / seconds:10.0f} {templates:10d}")

    if args.append:
        command = "benchmarks/bench_decay_model.py " + " ".join(a for a in sys.argv[1:] if a != "--append")
        lines = [
            "",
            f"## Decay-tree template sampling ({datetime.date.today()}, {provenance()})",
            "",
            f"Command: `.venv/bin/python {command.strip()}`; CPU seconds of one process. Model build {build:.2f} s.",
            "",
            "| call | events | CPU s | events/s | templates in catalogue |",
            "|---|---|---|---|---|",
        ]
        lines += [f"| {call} | {args.events} | {seconds:.3f} | {args.events / seconds:,.0f} | {templates} |" for call, seconds, templates in rows]
        path = REPO / "benchmarks" / "RESULTS.md"
        atomic_write_text(path, path.read_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n")
        print(f"appended to {path}")


if __name__ == "__main__":
    main()
