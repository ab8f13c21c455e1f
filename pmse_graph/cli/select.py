"""``pmse-graph select``: cut-based J/psi -> rho pi selection with a kinematic fit.

Example::

    pmse-graph select sim/*.root --out selection/ --tightness 0.5
    pmse-graph select sim/*.root --out selection/ --scan --topology sim/topology.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmse_graph.errors import ConfigError


def select(
    files: Annotated[list[Path], typer.Argument(help="Reconstructed ntuple ROOT files (tree 'evt').")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for selection.parquet, cutflow.csv and metrics.json.")],
    tightness: Annotated[
        float, typer.Option("--tightness", help="Working point from 0 (loose) to 1 (tight); moves the rho band, chi2 and margins.")
    ] = 0.5,
    scan: Annotated[
        bool, typer.Option("--scan", help="Also evaluate 21 tightness values from 0 to 1 and plot the precision-recall curves.")
    ] = False,
    topology: Annotated[
        Path | None,
        typer.Option("--topology", help="topology.csv that names the decay trees (default: the one beside the first file)."),
    ] = None,
    fit: Annotated[str, typer.Option("--fit", help="5C (pi0 mass constraint) or 4C (with a M(gamma gamma) window).")] = "5C",
    pion_id: Annotated[bool, typer.Option("--pion-id/--no-pion-id", help="Require both tracks to pass the pion identification.")] = True,
    detector_config: Annotated[
        Path | None, typer.Option("--detector-config", help="Detector YAML with the good-track, good-photon cuts and resolutions.")
    ] = None,
    step_size: Annotated[int, typer.Option("--step-size", help="Events read per chunk; memory grows with it.")] = 50_000,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Select J/psi -> pi+ rho-, pi- rho+, pi0 rho0 and non-resonant pi+ pi- pi0 events."""
    from pmse_graph.config import parse_config
    from pmse_graph.selection.config import SelectionCuts
    from pmse_graph.selection.run import run_selection

    if not 0.0 <= tightness <= 1.0:
        raise ConfigError(f"Expected --tightness between 0 and 1 (got {tightness})")
    if step_size < 1:
        raise ConfigError(f"Expected --step-size >= 1 (got {step_size})")
    cuts = parse_config(SelectionCuts, {"fit": fit, "pion_id": pion_id}, source="command-line options")
    report = run_selection(
        files, out_dir=out, cuts=cuts, tightness=tightness, scan=scan, topology=topology,
        detector_config=detector_config, step_size=step_size, progress=progress,
    )  # fmt: skip

    selected = report.metrics["working_point"]["selected"]
    typer.echo(f"{selected} of {report.metrics['num_events']} events selected at tightness {tightness:g} ({report.seconds:.1f} s)")
    for row in report.cut_flow.itertuples(index=False):
        typer.echo(f"  {row.step:<22} {row.remaining:>9}")
    classes = report.metrics["working_point"].get("classes")
    if classes:
        for name, entry in classes.items():
            precision = "n/a" if entry["precision"] is None else f"{entry['precision']:.3f}"
            recall = "n/a" if entry["recall"] is None else f"{entry['recall']:.3f}"
            typer.echo(f"  {name:<12} precision {precision}  recall {recall}")
    target = report.metrics.get("precision_target")
    if target:
        for line in target["lines"]:
            typer.echo(line)
    typer.echo(f"Wrote {', '.join(path.name for path in report.paths.values())} to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``select`` command to ``app``."""
    app.command("select")(select)
