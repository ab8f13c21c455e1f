"""``pmse-graph report``: one markdown and HTML page for a run and its downstream results.

    pmse-graph report RUN [--cluster DIR ...] [--classify DIR] [--anomaly DIR] [--topology CSV] --out FILE
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def report(
    run: Annotated[Path, typer.Argument(help="Pretraining run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report file; FILE.md and FILE.html are written.")],
    cluster: Annotated[Optional[list[Path]], typer.Option("--cluster", help="Results folder of 'pmse-graph cluster'; repeat for more k values.")] = None,
    classify: Annotated[Optional[Path], typer.Option("--classify", help="Results folder of 'pmse-graph classify'.")] = None,
    anomaly: Annotated[Optional[Path], typer.Option("--anomaly", help="Results folder of 'pmse-graph anomaly'.")] = None,
    topology: Annotated[
        Optional[Path], typer.Option("--topology", help="topology.csv naming the decay trees (default: the one the results recorded, if any).")
    ] = None,
) -> None:
    """Write the run's configuration, loss curves, result tables and plots to one page."""
    from pmse_graph.downstream.report import write_report

    markdown_path, html_path = write_report(run_dir=run, out=out, cluster=cluster or None, classify=classify, anomaly=anomaly, topology=topology)
    typer.echo(f"Report written: {markdown_path} and {html_path}")


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""
    app.command(name="report")(report)
