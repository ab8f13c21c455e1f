"""``pmse-graph bench``: the graph encoder against the transformer baseline, side by side.

Example::

    pmse-graph bench --config configs/bench.yaml --out bench_out
    pmse-graph bench --config configs/bench.yaml --out bench_tiny --tiny --no-record
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_RESULTS = Path("benchmarks") / "RESULTS.md"


def bench(
    config: Annotated[Path, typer.Option("--config", help="Benchmark YAML (sizes, encoders, seed).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder; generated events already in it are reused.")],
    scale: Annotated[float, typer.Option("--scale", help="Multiplies the event counts of the chosen size.")] = 1.0,
    tiny: Annotated[bool, typer.Option("--tiny", help="Use the tiny size (the configuration CI runs).")] = False,
    compile_check: Annotated[bool, typer.Option("--compile-check", help="Also time training with torch.compile and record whether torch-scatter is installed.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the runs and scores of an earlier benchmark in --out; its generated events are reused.")] = False,
    results_md: Annotated[Path, typer.Option("--results-md", help="Markdown file the summary is appended to.")] = DEFAULT_RESULTS,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Append the summary to --results-md.")] = True,
) -> None:
    """Pretrain and evaluate every encoder on the same events and write the comparison."""
    from pmse_graph.benchmark.config import BenchConfig
    from pmse_graph.benchmark.record import write_results
    from pmse_graph.benchmark.suite import run_benchmark
    from pmse_graph.config import load_config

    # the command as parsed, so the record is the same whether typed or run through a test runner
    arguments = ["--config", str(config), "--out", str(out), "--scale", str(scale)]
    flags = {"--tiny": tiny, "--compile-check": compile_check, "--overwrite": overwrite}
    arguments += [flag for flag, enabled in flags.items() if enabled]
    command = "pmse-graph bench " + shlex.join(arguments)
    results = run_benchmark(config=load_config(BenchConfig, config), out=out, tiny=tiny, scale=scale, compile_check=compile_check, overwrite=overwrite)
    summary = write_results(results, out=out, command=command, results_md=results_md if record else None)
    typer.echo(summary["verdict"])
    typer.echo(f"Wrote {out / 'results.json'}" + (f" and appended the summary to {results_md}" if record else ""))


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app``."""
    app.command("bench")(bench)
