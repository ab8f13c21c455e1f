"""The chunked event-generation loop behind ``pmse-graph simulate``.

:func:`simulate` runs in two passes. The first keeps one integer per event and the distinct
templates, the second works chunk by chunk, so its memory does not grow with the number of
events:

1. Draw a decay-tree template for every event (one integer per event, cheap), label each
   distinct template once with TopoAna's conventions and rank the decay-tree and final-state
   classes by event count. Ids are therefore known before any file is written, and the
   topology table ``topology.csv`` is written beside the ROOT files.
2. For each chunk of events: expand the templates into flat truth arrays, generate the
   kinematics (:class:`pmse_graph.simulation.decayer.Decayer`), build a
   :class:`~pmse_graph.simulation.truth.TruthChunk`, run the detector response and append the
   reconstructed events to the ROOT files (:class:`~pmse_graph.simulation.writer.NtupleWriter`).

Nothing is written before the templates are drawn, labelled and checked. A template with a
decay that no mass draw can open stops the run with the DEC line of that mode. An output
folder that contains an earlier run's ROOT files or ``topology.csv`` is rejected unless
``overwrite=True``, which deletes that run's files first.

Every random stream derives from the seed: templates from ``SeedSequence([seed, 0])``,
chunk ``i`` from ``SeedSequence([seed, 1, i])``. The same seed, event count and chunk size
therefore give the same events; a different chunk size gives different (equally valid)
events. The ROOT files match byte for byte except for the times at which uproot stamps them
(see :class:`~pmse_graph.simulation.writer.NtupleWriter`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import Field

from pmse_graph.config import StrictModel, dump_yaml
from pmse_graph.errors import ConfigError, DataError
from pmse_graph.simulation.decayer import Decayer
from pmse_graph.simulation.truth import TruthChunk
from pmse_graph.simulation.writer import EVENT_BRANCHES, TRACK_BRANCHES, TRACK_COUNTER, Compression, NtupleWriter
from pmse_graph.topology.table import TopologyCounter, TopologyTable
from pmse_graph.topology.tree import label_flat

logger = logging.getLogger(__name__)

TOPOLOGY_FILE = "topology.csv"
CONFIG_FILE = "simulate_config.yaml"
TEMPLATE_BLOCK = 250_000
"""Events whose templates are drawn in one call, bounding the memory of the first pass."""


class SimulationConfig(StrictModel):
    """Settings of one ``simulate`` run."""

    num_events: int = Field(ge=1, description="events to generate")
    seed: int = Field(ge=0, le=2**31 - 1, description="random seed, also written as the run number")
    events_per_file: int = Field(100_000, ge=1, description="maximum events per ROOT file")
    chunk_size: int = Field(20_000, ge=1, description="events generated and written per step")
    compression: Compression = "zlib"
    prefix: str = Field("jpsi_inclusive", min_length=1, description="ROOT file name prefix")
    crossing_half_angle: float = Field(0.011, ge=0.0, lt=0.1, description="half the beam crossing angle, rad")
    photos_min_fraction: float = Field(0.01, gt=0.0, lt=1.0, description="smallest PHOTOS photon energy over its maximum")
    decay_source: str = Field("", description="where the decay trees come from (DEC file or truth files), for the record")


class TemplateSource(Protocol):
    """Interface of a decay model as the generator uses it."""

    def sample(self, num_events: int, rng: np.random.Generator) -> tuple[np.ndarray, Any]: ...

    def particle_properties(self, pdg: int) -> tuple[float, float, float]: ...


class DetectorSimulation(Protocol):
    """Interface of a detector response as the generator uses it."""

    def simulate(self, chunk: TruthChunk, rng: np.random.Generator) -> dict[str, np.ndarray]: ...


@dataclass
class TemplateClasses:
    """Ranked decay-tree and final-state classes of the templates.

    Attributes:
        tree_id: ranked decay-tree id of each template, -1 for templates no event uses,
            shape ``(num_templates,)`` int32.
        final_state_id: ranked final-state id of each template, shape ``(num_templates,)`` int32.
        table: the topology table of the generated events, most frequent tree first.
    """

    tree_id: np.ndarray
    final_state_id: np.ndarray
    table: TopologyTable


@dataclass
class SimulationSummary:
    """Files, classes and timing of one run.

    Attributes:
        num_events: events generated.
        paths: ROOT files written, in order.
        topology_path: the topology table ``topology.csv``.
        table: the ranked decay-tree classes of the run.
        seconds: wall seconds of the whole run.
        phase_space_efficiency: accepted over generated decays in the phase-space accept-reject.
        bound_violations: phase-space weights above their tuned bound (see ``PhaseSpaceSampler``).
        stage_seconds: wall seconds per stage (templates, labels, kinematics, detector, write).
        stage_cpu_seconds: CPU seconds of this process per stage.
    """

    num_events: int
    paths: list[Path]
    topology_path: Path
    table: TopologyTable
    seconds: float
    phase_space_efficiency: float
    bound_violations: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.num_events / self.seconds if self.seconds > 0 else float("inf")


class _StageTimer:
    """Wall and CPU seconds summed per named stage."""

    STAGES = ("templates", "labels", "kinematics", "detector", "write")

    def __init__(self) -> None:
        self.wall = dict.fromkeys(self.STAGES, 0.0)
        self.cpu = dict.fromkeys(self.STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] += time.perf_counter() - wall
        self.cpu[name] += time.process_time() - cpu


def classify_templates(templates: list, template_of_event: np.ndarray) -> TemplateClasses:
    """Label each template once, then rank the classes over the events as TopoAna would.

    Classes are counted in event order, so ties in count are broken as TopoAna breaks them
    on the written files.
    """
    lengths = np.array([len(template.pdg) for template in templates], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    pdg = np.concatenate([np.asarray(template.pdg) for template in templates])
    mother = np.concatenate([np.asarray(template.mother) for template in templates])
    labels = label_flat(pdg, mother, offsets)

    counter = TopologyCounter()
    for start in range(0, template_of_event.shape[0], TEMPLATE_BLOCK):
        block = template_of_event[start : start + TEMPLATE_BLOCK]
        counter.add(labels.tree[block], labels.final_state[block])
    table = counter.to_table()
    frame = table.to_frame()
    tree_rank = dict(zip(frame["tree"], frame["id"]))
    state_rank = dict(zip(frame["final_state"], frame["final_state_id"]))
    tree_id = np.array([tree_rank.get(tree, -1) for tree in labels.tree], dtype=np.int32)
    final_state_id = np.array([state_rank.get(state, -1) for state in labels.final_state], dtype=np.int32)
    return TemplateClasses(tree_id=tree_id, final_state_id=final_state_id, table=table)


class _TemplateArrays:
    """The catalogue's templates concatenated, for gathering many events at once."""

    def __init__(self, templates: list) -> None:
        self.lengths = np.array([len(template.pdg) for template in templates], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.pdg = np.concatenate([np.asarray(template.pdg, dtype=np.int32) for template in templates])
        self.mother = np.concatenate([np.asarray(template.mother, dtype=np.int32) for template in templates])

    def expand(self, template_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(offsets, pdg, mother)`` of the events whose templates are ``template_index``."""
        counts = self.lengths[template_index]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        source = np.repeat(self.starts[template_index] - offsets[:-1], counts) + np.arange(offsets[-1])
        return offsets, self.pdg[source], self.mother[source]


def simulate(
    *,
    model: TemplateSource,
    response: DetectorSimulation,
    config: SimulationConfig,
    out_dir: str | os.PathLike[str],
    progress: bool = True,
    overwrite: bool = False,
) -> SimulationSummary:
    """Generate ``config.num_events`` events and write them as ROOT files plus ``topology.csv``.

    The resolved settings go to ``simulate_config.yaml`` in the same folder.

    Args:
        model: decay model that draws templates (``sample``) and returns particle properties.
        response: detector response turning a :class:`TruthChunk` into reconstructed branches.
        config: run settings.
        out_dir: output folder, created when missing.
        progress: show a tqdm progress bar.
        overwrite: delete an earlier run's files in ``out_dir`` (see :func:`earlier_run_files`)
            once the new run has passed its checks. False (default) rejects such a folder.

    Returns:
        The files, classes, timing and phase-space statistics of the run.

    Raises:
        ConfigError: for a folder with an earlier run's files (without ``overwrite``) or a
            template with a decay that cannot be generated. Nothing is written in either case.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    earlier = earlier_run_files(out_dir, prefix=config.prefix)
    if earlier and not overwrite:
        listed = ", ".join(path.name for path in earlier[:5]) + (", ..." if len(earlier) > 5 else "")
        raise ConfigError(
            f"Output folder {out_dir} already contains an earlier run's files ({listed}). Their class ids follow that "
            f"run's ranking, so they must not mix with new files. Choose another folder or pass --overwrite "
            f"(overwrite=True) to delete them first"
        )
    began = time.perf_counter()
    timer = _StageTimer()

    # 1. templates of all events, then one label per template
    with timer.stage("templates"):
        template_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
        blocks = []
        catalogue = None
        for start in range(0, config.num_events, TEMPLATE_BLOCK):
            block, catalogue = model.sample(min(TEMPLATE_BLOCK, config.num_events - start), template_rng)
            blocks.append(np.asarray(block, dtype=np.int32))
        template_of_event = np.concatenate(blocks)
        templates = list(catalogue)
    with timer.stage("labels"):
        classes = classify_templates(templates, template_of_event)
    logger.info("%d events use %d templates in %d decay-tree classes", config.num_events, len(templates), len(classes.table))
    arrays = _TemplateArrays(templates)
    decayer = Decayer(
        properties=model.particle_properties,
        crossing_half_angle=config.crossing_half_angle,
        photos_min_fraction=config.photos_min_fraction,
    )
    check_templates(decayer, model, arrays, np.flatnonzero(classes.tree_id >= 0))

    # 2. the output folder, then kinematics, detector response and writing, chunk by chunk
    for path in earlier:
        path.unlink()
    if earlier:
        logger.warning("Deleted %d files of an earlier run in %s (--overwrite)", len(earlier), out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dump_yaml(config, out_dir / CONFIG_FILE)
    topology_path = out_dir / TOPOLOGY_FILE
    classes.table.write_csv(topology_path)
    writer = NtupleWriter(
        out_dir=out_dir,
        events_per_file=config.events_per_file,
        prefix=config.prefix,
        compression=config.compression,
        file_id_seed=config.seed,
    )
    with writer, tqdm(total=config.num_events, unit="events", disable=not progress, desc="simulate") as bar:
        for chunk_index, start in enumerate(range(0, config.num_events, config.chunk_size)):
            stop = min(config.num_events, start + config.chunk_size)
            rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, chunk_index]))
            with timer.stage("kinematics"):
                chunk = _generate_chunk(decayer, arrays, classes, template_of_event[start:stop], start, rng)
            with timer.stage("detector"):
                reconstructed = response.simulate(chunk, rng)
            with timer.stage("write"):
                _write_chunk(writer, chunk, reconstructed, run=config.seed)
            bar.update(stop - start)

    sampler = decayer.sampler
    if sampler.num_bound_violations:
        logger.warning(
            "%d phase-space weights exceeded their bound; those decays were unweighted against a raised bound",
            sampler.num_bound_violations,
        )
    return SimulationSummary(
        num_events=config.num_events,
        paths=writer.paths,
        topology_path=topology_path,
        table=classes.table,
        seconds=time.perf_counter() - began,
        phase_space_efficiency=sampler.efficiency,
        bound_violations=sampler.num_bound_violations,
        stage_seconds=timer.wall,
        stage_cpu_seconds=timer.cpu,
    )


def earlier_run_files(out_dir: Path, *, prefix: str) -> list[Path]:
    """Return the files of an earlier run in ``out_dir`` that a new run must not sit beside.

    These are ``<prefix>_*.root`` (also unfinished hidden ones), ``topology.csv`` and
    ``simulate_config.yaml``; the list is empty when the folder has neither ROOT files of
    this prefix nor ``topology.csv``. Any other ``*.root`` file raises, because a glob over
    the folder would read it as part of the sample and ``overwrite`` does not delete it.

    Raises:
        ConfigError: when ``out_dir`` contains ROOT files of another name, which ``overwrite``
            does not delete.
    """
    if not out_dir.is_dir():
        return []
    ours = sorted({*out_dir.glob(f"{prefix}_*.root"), *out_dir.glob(f".{prefix}_*.root.tmp")})
    others = sorted(set(out_dir.glob("*.root")) - set(ours))
    if others:
        raise ConfigError(
            f"Output folder {out_dir} contains ROOT files that this generator did not write ({', '.join(p.name for p in others[:5])}), "
            f"and a glob over the folder would read them with the new files. Choose another folder"
        )
    found = [path for path in (out_dir / TOPOLOGY_FILE,) if path.is_file()]
    if not ours and not found:
        return []
    return ours + found + [path for path in (out_dir / CONFIG_FILE,) if path.is_file()]


def check_templates(decayer: Decayer, model: TemplateSource, arrays: _TemplateArrays, used: np.ndarray) -> None:
    """Raise unless every used template can be generated: no decay may be closed at all masses.

    Args:
        decayer: the decayer whose particle table sets masses and cut-offs.
        model: the decay model, queried for the source of a failing decay (``describe_vertex``).
        arrays: the templates, concatenated.
        used: indices of the templates that events use, shape ``(num_used,)``.

    Raises:
        ConfigError: naming the DEC line (or the template) of the first decay that cannot be generated.
    """
    if used.size == 0:
        return
    offsets, pdg, mother = arrays.expand(used)
    closed = decayer.closed_decays(pdg=pdg, mother=mother, offsets=offsets)
    failing = np.flatnonzero(closed >= 0)
    if failing.size == 0:
        return
    template, particle = int(used[failing[0]]), int(closed[failing[0]])
    describe = getattr(model, "describe_vertex", None)
    where = describe(template, particle) if describe is not None else f"particle {particle} of template {template}"
    raise ConfigError(
        f"{where}: the daughters weigh more than the mother's largest allowed mass even at their smallest masses "
        f"(after their own decays), so this decay tree cannot be generated ({failing.size} of the {used.size} drawn trees cannot); "
        f"remove or fix the line, or the masses and cut-offs of its particles"
    )


def _generate_chunk(
    decayer: Decayer,
    arrays: _TemplateArrays,
    classes: TemplateClasses,
    template_index: np.ndarray,
    first_event: int,
    rng: np.random.Generator,
) -> TruthChunk:
    offsets, pdg, mother = arrays.expand(template_index)
    particles = decayer.decay(pdg=pdg, mother=mother, offsets=offsets, rng=rng)
    return TruthChunk(
        event_id=np.arange(first_event, first_event + template_index.shape[0], dtype=np.int64),
        tree_id=classes.tree_id[template_index],
        final_state_id=classes.final_state_id[template_index],
        offsets=offsets,
        pdg=pdg,
        mother=mother,
        p4=particles.p4,
        vertex=particles.vertex,
        is_final=particles.is_final,
    )


def _write_chunk(writer: NtupleWriter, chunk: TruthChunk, reconstructed: dict[str, Any], *, run: int) -> None:
    """Merge generator and detector branches and append them to the ROOT files."""
    if TRACK_COUNTER not in reconstructed:
        raise DataError(f"The detector response returned no '{TRACK_COUNTER}' branch (got {sorted(reconstructed)})")
    num_tracks = _flat(reconstructed[TRACK_COUNTER], TRACK_COUNTER)
    if num_tracks.shape[0] != chunk.num_events:
        raise DataError(f"The detector response returned {num_tracks.shape[0]} '{TRACK_COUNTER}' values for {chunk.num_events} events")
    event_branches = {
        "run": np.full(chunk.num_events, run, dtype=np.int32),
        "event": chunk.event_id,
        "topo_tree_id": chunk.tree_id,
        "topo_fs_id": chunk.final_state_id,
    }
    for name in EVENT_BRANCHES:
        if name not in event_branches and name in reconstructed:
            event_branches[name] = _flat(reconstructed[name], name)
    track_branches = {name: _flat(reconstructed[name], name) for name in TRACK_BRANCHES if name in reconstructed}
    writer.write(
        event_branches=event_branches,
        track_branches=track_branches,
        num_tracks=num_tracks,
        pid=chunk.pdg,
        midx=chunk.mother,
        num_truth=np.diff(chunk.offsets),
    )


def _flat(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a flat numpy array; jagged awkward arrays are flattened over events."""
    if isinstance(values, np.ndarray):
        return values
    import awkward as ak

    array = ak.Array(values)
    if array.ndim == 2:
        array = ak.flatten(array, axis=1)
    elif array.ndim != 1:
        raise DataError(f"Detector branch '{name}' has {array.ndim} dimensions; expected per-event or per-track values")
    return ak.to_numpy(array)
