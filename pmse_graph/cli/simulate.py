"""``pmse-graph simulate``: generate BESIII-like J/psi inclusive events as ROOT ntuples.

Example::

    pmse-graph simulate --events 100000 --seed 1 --out sim/
    pmse-graph simulate --events 100000 --seed 1 --out sim/ --dec-file BES_DECAY_v145.DEC --unknown-particles drop
    pmse-graph simulate --events 100000 --seed 1 --out sim/ --truth-trees jpsi1.root --truth-trees jpsi2.root \
        --particle-table pdt.table
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmse_graph.errors import ConfigError


def simulate(
    events: Annotated[int, typer.Option("--events", help="Number of events to generate.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (0 to 2^31 - 1), also written as the run number.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for the ROOT files and topology.csv.")],
    dec_file: Annotated[
        Path | None,
        typer.Option(
            "--dec-file",
            help="EvtGen DEC table to draw decay trees from (default: the LHCb table shipped with decaylanguage). "
            "Particles without a Decay block decay as in the default table. BESIII's BES_DECAY_v145.DEC names "
            "particles without a known mass (phi(2170)); run it with --unknown-particles drop.",
        ),
    ] = None,
    particle_table: Annotated[
        Path | None,
        typer.Option("--particle-table", help="BESIII pdt.table for masses, widths and Breit-Wigner cut-offs (default: one beside the DEC file)."),
    ] = None,
    unknown_particles: Annotated[
        str,
        typer.Option(
            "--unknown-particles",
            help="What to do with DEC lines naming a particle without known name or mass: raise, or drop the lines "
            "(logged, then the block is renormalised).",
        ),
    ] = "raise",
    truth_trees: Annotated[
        list[Path] | None,
        typer.Option("--truth-trees", help="MC-truth ROOT file whose decay trees are reused with fresh kinematics; repeat for several files."),
    ] = None,
    truth_tree_name: Annotated[str, typer.Option("--truth-tree-name", help="Tree name in the truth files.")] = "evt",
    pid_branch: Annotated[str, typer.Option("--pid", help="Jagged branch of PDG codes in the truth files.")] = "Pid",
    mother_branch: Annotated[str, typer.Option("--mother", help="Jagged branch of mother indices in the truth files.")] = "Midx",
    detector_config: Annotated[
        Path | None, typer.Option("--detector-config", help="Detector response YAML (default: the packaged BESIII parameters).")
    ] = None,
    events_per_file: Annotated[int, typer.Option("--events-per-file", help="Maximum events per ROOT file.")] = 100_000,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            help="Events generated and written per step; memory grows with it. The events depend on it: the same seed "
            "with another chunk size gives different events.",
        ),
    ] = 20_000,
    compression: Annotated[str, typer.Option("--compression", help="ROOT compression: zlib or none.")] = "zlib",
    top: Annotated[int, typer.Option("--top", help="Number of decay-tree classes to print.")] = 10,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Delete an earlier run's files in --out (jpsi_inclusive_*.root, topology.csv, simulate_config.yaml) "
            "before writing. Without it, such a folder is rejected.",
        ),
    ] = False,
) -> None:
    """Generate J/psi inclusive events with kinematics, detector response and TopoAna labels."""
    from pmse_graph.config import parse_config
    from pmse_graph.simulation.decay_model import DecayModel
    from pmse_graph.simulation.detector import DetectorResponse
    from pmse_graph.simulation.generator import SimulationConfig
    from pmse_graph.simulation.generator import simulate as run_simulation

    if dec_file is not None and truth_trees:
        raise ConfigError("Use either --dec-file or --truth-trees, not both")
    if top < 0:
        raise ConfigError(f"Expected --top >= 0 (got {top})")
    if unknown_particles not in ("raise", "drop"):
        raise ConfigError(f"Expected --unknown-particles raise or drop (got {unknown_particles!r})")
    config = parse_config(
        SimulationConfig,
        {
            "num_events": events,
            "seed": seed,
            "events_per_file": events_per_file,
            "chunk_size": chunk_size,
            "compression": compression,
            "decay_source": _describe_source(dec_file, truth_trees),
        },
        source="command-line options",
    )

    if truth_trees:
        model = DecayModel.from_truth_trees(
            [str(path) for path in truth_trees],
            tree=truth_tree_name,
            pid=pid_branch,
            mother=mother_branch,
            particle_table=particle_table,
        )
    else:
        model = DecayModel.from_dec_file(dec_file, particle_table=particle_table, on_unknown=unknown_particles)
    response = DetectorResponse.from_config(detector_config)
    summary = run_simulation(model=model, response=response, config=config, out_dir=out, progress=progress, overwrite=overwrite)

    frame = summary.table.to_frame()
    typer.echo(
        f"{summary.num_events} events in {len(summary.paths)} ROOT file{'' if len(summary.paths) == 1 else 's'}, "
        f"{len(frame)} decay-tree classes, "
        f"{int(frame['final_state_id'].max()) + 1 if len(frame) else 0} final-state classes, "
        f"{summary.seconds:.1f} s ({summary.events_per_second:.0f} events/s)"
    )
    for row in frame.head(top).itertuples(index=False):
        share = 100.0 * row.count / summary.num_events
        typer.echo(f"{row.id:>6} {row.count:>8} {share:6.2f}%  {row.tree}")
    typer.echo(f"Wrote {summary.topology_path} and the ROOT files to {out}")


def _describe_source(dec_file: Path | None, truth_trees: list[Path] | None) -> str:
    if truth_trees:
        return "truth trees: " + ", ".join(str(path) for path in truth_trees)
    return f"DEC file: {dec_file}" if dec_file is not None else "DEC file: decaylanguage's DECAY_LHCB.DEC"


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""
    app.command("simulate")(simulate)
