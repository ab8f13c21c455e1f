"""``pmse-graph topology``: TopoAna decay-tree table of MC-truth ntuples.

Example::

    pmse-graph topology jpsi1.root jpsi2.root --tree evt --pid Pid --mother Midx --out topo/
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmse_graph.errors import ConfigError
from pmse_graph.topology.names import ParticleNames
from pmse_graph.topology.reader import count_topologies

CSV_NAME = "topology.csv"


def topology(
    files: Annotated[list[Path], typer.Argument(help="MC-truth ROOT files, read in this order.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder; the full table goes to OUT/topology.csv.")],
    tree: Annotated[str, typer.Option("--tree", help="Tree name in every file (TopoAna's example files: evt).")],
    pid: Annotated[str, typer.Option("--pid", help="Jagged branch of PDG codes (example files: Pid).")],
    mother: Annotated[str, typer.Option("--mother", help="Jagged branch of mother indices, -1 for the root (example files: Midx).")],
    pid_table: Annotated[
        Path | None,
        typer.Option("--pid-table", help="TopoAna particle table (pidtable_BESIII.dat format) for particle names."),
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Number of decay trees to print.")] = 20,
    step_size: Annotated[int, typer.Option("--step-size", help="Entries read and labelled at once.")] = 100_000,
    tie_order: Annotated[
        str,
        typer.Option(
            "--tie-order",
            help="Order of trees with equal counts: 'topoana' (as TopoAna lists them) or 'first_seen' (faster on very many trees).",
        ),
    ] = "topoana",
) -> None:
    """Rank the decay trees of MC-truth events as TopoAna does and write the table."""
    if top < 0:
        raise ConfigError(f"Expected --top >= 0 (got {top})")
    names = ParticleNames.from_pid_table(pid_table) if pid_table is not None else ParticleNames.default()
    table = count_topologies(
        files, tree_name=tree, pid_branch=pid, mother_branch=mother, names=names, step_size=step_size, tie_order=tie_order
    )
    path = out / CSV_NAME
    table.write_csv(path)

    frame = table.to_frame()
    total = table.num_events
    typer.echo(f"{total} events, {len(frame)} decay trees, {frame['final_state_id'].max() + 1 if len(frame) else 0} final states")
    for row in frame.head(top).itertuples(index=False):
        share = 100.0 * row.count / total
        typer.echo(f"{row.id:>6} {row.count:>8} {share:6.2f}%  {row.tree}")
        typer.echo(f"{'':>25}{row.final_state}")
    typer.echo(f"Wrote {path}")


def register(app: typer.Typer) -> None:
    """Add the ``topology`` command to ``app``."""
    app.command("topology")(topology)
