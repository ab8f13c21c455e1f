"""The ``pmse-graph inspect`` command: check ntuples against a schema and summarise them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pmse_graph.data.schema import load_schema
from pmse_graph.data.summary import summarize_files


def inspect_files(
    files: Annotated[list[str], typer.Argument(help="ROOT files, globs or URLs to check.")],
    schema: Annotated[str, typer.Option("--schema", "-s", help="Schema name (besiii, hzz) or path to a schema YAML file.")] = "besiii",
    step_size: Annotated[int, typer.Option(help="Entries read per step.")] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of text.")] = False,
    nonfinite: Annotated[str, typer.Option(help="Invalid (NaN, inf, out-of-range) values: 'error' makes the file "
                                                "unusable, as in training; 'drop-event' drops and counts their events.")] = "error",
) -> None:
    """Validate files against the schema and print events, particles, conditions, labels and problems.

    Exits with status 1 when any file is unusable: it fails validation, raises under the
    ``--nonfinite`` policy, or has no event left after dropping empty and invalid events.
    """
    summaries = summarize_files(files, load_schema(schema), step_size=step_size, nonfinite=nonfinite)
    if as_json:
        typer.echo(json.dumps([summary.to_dict() for summary in summaries], indent=2))
    else:
        for summary in summaries:
            status = "ok" if summary.usable else "UNUSABLE"
            typer.echo(f"{summary.path}: {status}")
            typer.echo(f"  entries {summary.entries}, events kept {summary.events}, dropped: "
                       f"{summary.dropped_empty} with zero particles, {summary.dropped_nonfinite} with non-finite values")
            if summary.particles:
                p = summary.particles
                typer.echo(f"  particles per event: min {p['min']}, mean {p['mean']:.2f}, max {p['max']}")
                conditions = ", ".join(f"{name} {value:.2f}" for name, value in summary.conditions.items())
                typer.echo(f"  mean condition counts: {conditions}")
            for title, classes in (("decay-tree", summary.tree_classes), ("final-state", summary.final_state_classes)):
                if classes:
                    typer.echo(f"  top {title} classes (id: events): " + ", ".join(f"{c}: {n}" for c, n in classes))
            for problem in summary.problems:
                typer.secho(f"  problem: {problem}", fg=typer.colors.YELLOW if summary.usable else typer.colors.RED)
    unusable = [summary.path for summary in summaries if not summary.usable]
    if unusable:
        typer.secho(f"{len(unusable)} of {len(summaries)} files are unusable: {', '.join(unusable)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""
    app.command(name="inspect")(inspect_files)
