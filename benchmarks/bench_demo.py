"""Wall time of the whole demo chain, stage by stage.

    .venv/bin/python benchmarks/bench_demo.py --append

Runs the stages of ``pmse-graph demo`` (each as the subprocess a user would start) in a
temporary folder with the default demo settings, prints the seconds of each stage and, with
--append, adds one row to its table in benchmarks/RESULTS.md with the date, machine and commit.
Wall time depends on what else the machine runs; the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pmse_graph.atomic import atomic_write_text
from pmse_graph.benchmark.provenance import git_commit, machine_description
from pmse_graph.demo import DemoSettings, _prepare_output, demo_commands

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Demo chain: `make demo` stages, wall seconds (`benchmarks/bench_demo.py`)"
HEADER = "| date | machine | commit | events | epochs | load before/after | " + " | ".join(
    ["simulate", "inspect", "pretrain", "embed", "cluster k=99", "cluster k=1000", "classify", "anomaly", "report", "total"]
) + " |"


def run_stages(out: Path, settings: DemoSettings) -> list[float]:
    """Run every demo stage in ``out`` and return the wall seconds of each."""
    seconds = []
    for args in demo_commands(out, settings):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pmse_graph", *args], check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - start)
    return seconds


def append_row(row: str) -> None:
    """Add ``row`` under this benchmark's table, creating the section when it is missing."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if HEADING not in text:
        separator = "|" + "---|" * HEADER.count(" | ") + "---|"
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{HEADER}\n{separator}\n"
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADING))
    end = start + 1
    while end < len(lines) and not lines[end].startswith("## "):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    lines.insert(end, row + "\n")
    atomic_write_text(RESULTS, "".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", action="store_true", help="add the row to benchmarks/RESULTS.md")
    options = parser.parse_args()

    settings = DemoSettings()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "demo"
        _prepare_output(out)
        seconds = run_stages(out, settings)
    load_after = os.getloadavg()[0]

    machine = machine_description()
    commit = git_commit()
    short_commit = commit[:12] + ("+changes" if commit.endswith("+changes") else "")
    cells = [f"{value:.0f}" for value in seconds] + [f"{sum(seconds):.0f}"]
    row = (
        f"| {datetime.date.today()} | {machine['cores']} cores, {machine['cpu']}, GPU {machine['gpu']} | {short_commit} "
        f"| {settings.events:,} | {settings.epochs} | {load_before:.1f}/{load_after:.1f} | " + " | ".join(cells) + " |"
    )
    print(HEADER)
    print(row)
    if options.append:
        append_row(row)
        print(f"added a row to {RESULTS}")


if __name__ == "__main__":
    main()
