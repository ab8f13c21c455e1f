"""The BESIII-like detector response: MC-truth particles in, reconstructed ntuple branches out.

:class:`DetectorResponse` runs the sub-detector modules on a whole
:class:`~pmse_graph.simulation.truth.TruthChunk` at once and assembles the
per-event counts and jagged per-track branches of ``docs/ntuple_format.md``:
charged tracks first, then neutral showers, 9999 where a sub-detector has no
information, and ``mc_idx`` pointing into the event's truth record (-1 for
split-off showers).

Which particle makes what:

- tracked charged particles: an MDC track with PID, the EMC cluster their helix
  reaches (if above threshold) and MUC hits;
- charged particles that the MDC misses but that reach the EMC, photons, neutral
  hadrons and antineutrons: neutral showers;
- hadronic showers of tracks: extra split-off neutral showers nearby;
- beam background and electronics noise: neutral showers at random places and
  times (``mc_idx`` -1 as for split-offs).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import awkward as ak
import numpy as np

from pmse_graph.errors import DataError
from pmse_graph.simulation.detector import emc, mdc, muc, pid
from pmse_graph.simulation.detector.branches import charged_columns, neutral_columns, to_jagged
from pmse_graph.simulation.detector.config import DetectorConfig, load_detector_config
from pmse_graph.simulation.detector.emc_shape import SHOWER_HADRONIC, shape_variables
from pmse_graph.simulation.detector.geometry import impact_on_cylinder
from pmse_graph.simulation.detector.neutral import build_neutral_showers, noise_clusters, split_track_showers
from pmse_graph.simulation.detector.particles import Category, classify
from pmse_graph.simulation.detector.selection import count_good_charged, count_good_photons
from pmse_graph.simulation.truth import TruthChunk

logger = logging.getLogger(__name__)


@dataclass
class VisibleParticles:
    """Final-state particles the detector can see, flattened over the chunk.

    Attributes:
        index: position in the chunk's particle arrays, shape ``(n,)``.
        event: event index, shape ``(n,)``, ascending.
        truth_index: index within the event's truth record, shape ``(n,)`` int32.
        category: :class:`Category`, shape ``(n,)``.
        charge: charge in units of e, shape ``(n,)``.
        p4: lab four-momenta ``(px, py, pz, E)``, shape ``(n, 4)`` GeV.
        mass: invariant masses from ``p4``, shape ``(n,)`` GeV.
        vertex: production vertices including the beam spot, shape ``(n, 3)`` cm.
    """

    index: np.ndarray
    event: np.ndarray
    truth_index: np.ndarray
    category: np.ndarray
    charge: np.ndarray
    p4: np.ndarray
    mass: np.ndarray
    vertex: np.ndarray

    @property
    def momentum(self) -> np.ndarray:
        return self.p4[:, :3]


def validate_chunk(chunk: TruthChunk) -> None:
    """Raise :class:`DataError` when the chunk's arrays disagree in size or hold non-finite kinematics."""
    n = chunk.num_particles
    if chunk.offsets.shape[0] < 1 or chunk.offsets[0] != 0 or chunk.offsets[-1] != n:
        raise DataError(
            f"TruthChunk offsets must start at 0 and end at the particle count {n} "
            f"(got first {chunk.offsets[:1].tolist()}, last {chunk.offsets[-1:].tolist()})"
        )
    if np.any(np.diff(chunk.offsets) < 0):
        raise DataError("TruthChunk offsets must be non-decreasing")
    for name, expected in (("p4", (n, 4)), ("vertex", (n, 3)), ("is_final", (n,)), ("mother", (n,))):
        shape = getattr(chunk, name).shape
        if shape != expected:
            raise DataError(f"TruthChunk.{name} has shape {shape}, expected {expected}")
    for name in ("p4", "vertex"):
        bad = ~np.isfinite(getattr(chunk, name)).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            event = int(np.searchsorted(chunk.offsets, first, side="right") - 1)
            raise DataError(
                f"TruthChunk.{name} contains non-finite values for {int(bad.sum())} particles; the first is particle "
                f"{first - int(chunk.offsets[event])} of event {int(chunk.event_id[event])}. Fix the generator output."
            )


class DetectorResponse:
    """Turns generated truth into BESIII-like reconstructed tracks and showers.

    Args:
        config: validated detector parameters.
    """

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.unknown_particle_count = 0
        self._reported_codes: set[int] = set()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> DetectorResponse:
        """Build the response from a detector YAML; ``None`` selects the default BESIII file."""
        return cls(load_detector_config(path))

    def simulate(self, chunk: TruthChunk, rng: np.random.Generator) -> dict[str, np.ndarray | ak.Array]:
        """Simulate the detector for every event of ``chunk``.

        Args:
            chunk: generated events with lab four-momenta and production vertices.
            rng: random generator; the same state and chunk give the same output.

        Returns:
            The per-event counts (``nTracks``, ``nCharged``, ``nNeutral``, ``nGoodCharged``,
            ``nGoodNeutral``: int32 arrays of shape ``(num_events,)``) and the per-track
            branches of :data:`TRACK_BRANCHES` as awkward arrays of shape
            ``(num_events, var)``, charged tracks first.

        Raises:
            DataError: when the chunk is inconsistent or contains non-finite momenta or vertices.
        """
        validate_chunk(chunk)
        cfg = self.config
        num_events = chunk.num_events
        field = cfg.solenoid_field_tesla
        particles = self._visible_particles(chunk, rng)

        # MDC tracks among the charged particles, then their PID and MUC response
        charged = np.flatnonzero(particles.charge != 0)
        tracks = mdc.reconstruct_tracks(
            vertex=particles.vertex[charged],
            momentum=particles.momentum[charged],
            charge=particles.charge[charged],
            mass=particles.mass[charged],
            field_tesla=field,
            config=cfg.mdc,
            rng=rng,
        )
        tracked = charged[tracks.tracked]
        identified = pid.identify(
            vertex=particles.vertex[tracked],
            true_momentum=particles.momentum[tracked],
            true_mass=particles.mass[tracked],
            charge=particles.charge[tracked],
            reco_momentum=tracks.momentum,
            field_tesla=field,
            config=cfg.pid,
            rng=rng,
        )
        muon_hits = muc.respond(
            category=particles.category[tracked], momentum=particles.momentum[tracked], config=cfg.muc, rng=rng
        )

        # EMC clusters of every visible particle that reaches the crystals
        impact = impact_on_cylinder(
            vertex=particles.vertex,
            momentum=particles.momentum,
            charge=particles.charge,
            field_tesla=field,
            radius_cm=cfg.emc.barrel_radius_cm,
            half_length_cm=cfg.emc.endcap_z_cm,
        )
        deposit, kind = emc.deposited_energy(category=particles.category, p4=particles.p4, config=cfg.emc, rng=rng)
        deposit = np.where(impact.reached, deposit, 0.0)
        clusters, in_emc = emc.measure(deposit=deposit, kind=kind, impact=impact.position, config=cfg.emc, rng=rng)
        has_cluster = in_emc & impact.reached & (clusters.energy > 0.0)

        # split-offs of tracks' hadronic showers, then the neutral showers
        is_track = np.zeros(particles.index.shape[0], dtype=bool)
        is_track[tracked] = True
        parents = np.flatnonzero(is_track & has_cluster & (clusters.kind == SHOWER_HADRONIC))
        fragments = split_track_showers(clusters=clusters, parents=parents, config=cfg.emc, rng=rng)
        noise = noise_clusters(num_events=num_events, config=cfg.emc, rng=rng)
        neutrals = build_neutral_showers(
            clusters=clusters,
            sources=np.flatnonzero(~is_track & has_cluster),
            fragments=fragments,
            noise=noise,
            event=particles.event,
            truth_index=particles.truth_index,
            num_events=num_events,
            config=cfg.emc,
        )

        # a track's cluster below threshold counts as no cluster
        track_energy = clusters.energy[tracked]
        track_has_cluster = has_cluster[tracked] & (track_energy >= cfg.emc.cluster_threshold_gev)

        # shape variables once the energies are final: track clusters first, then neutral showers
        num_track_showers = int(track_has_cluster.sum())
        shapes = shape_variables(
            energy=np.concatenate([track_energy[track_has_cluster], neutrals.energy]),
            kind=np.concatenate([clusters.kind[tracked][track_has_cluster], neutrals.kind]),
            config=cfg.emc,
            rng=rng,
        )

        # branch tables and per-event counts
        track_event = particles.event[tracked]
        charged_table = charged_columns(
            tracks=tracks,
            identified=identified,
            muon_hits=muon_hits,
            charge=particles.charge[tracked],
            truth_index=particles.truth_index[tracked],
            has_cluster=track_has_cluster,
            energy=track_energy,
            position=clusters.position[tracked],
            time=clusters.time[tracked],
            shapes=shapes,
            shape_rows=np.arange(num_track_showers),
        )
        neutral_table = neutral_columns(
            showers=neutrals,
            shapes=shapes,
            shape_rows=np.arange(num_track_showers, num_track_showers + neutrals.energy.shape[0]),
        )
        num_charged = np.bincount(track_event, minlength=num_events).astype(np.int32)
        num_neutral = np.bincount(neutrals.event, minlength=num_events).astype(np.int32)
        # photon isolation uses the reconstructed tracks extrapolated from (0, 0, vz0) to the EMC,
        # as an analysis of the ntuple does, so readers can recompute the count from the branches
        track_start = np.zeros((tracks.momentum.shape[0], 3))
        track_start[:, 2] = tracks.vz0
        track_impact = impact_on_cylinder(
            vertex=track_start,
            momentum=tracks.momentum,
            charge=particles.charge[tracked],
            field_tesla=field,
            radius_cm=cfg.emc.barrel_radius_cm,
            half_length_cm=cfg.emc.endcap_z_cm,
        )
        output: dict[str, np.ndarray | ak.Array] = {
            "nTracks": num_charged + num_neutral,
            "nCharged": num_charged,
            "nNeutral": num_neutral,
            "nGoodCharged": count_good_charged(
                event=track_event,
                momentum=tracks.momentum,
                vz0=tracks.vz0,
                vr0=tracks.vr0,
                config=cfg.selection.good_charged,
                num_events=num_events,
            ),
            "nGoodNeutral": count_good_photons(
                event=neutrals.event,
                energy=neutrals.energy,
                position=neutrals.position,
                time=neutrals.time,
                track_event=track_event[track_impact.reached],
                track_position=track_impact.position[track_impact.reached],
                config=cfg.selection.good_photon,
                num_events=num_events,
            ),
        }
        output.update(
            to_jagged(
                charged=charged_table,
                charged_event=track_event,
                neutral=neutral_table,
                neutral_event=neutrals.event,
                num_charged=num_charged,
                num_neutral=num_neutral,
            )
        )
        return output

    def _visible_particles(self, chunk: TruthChunk, rng: np.random.Generator) -> VisibleParticles:
        """Select the visible final-state particles (no neutrinos) and add the per-event beam spot to their vertices."""
        category_all, charge_all, unknown_all = classify(chunk.pdg)
        index = np.flatnonzero(chunk.is_final & (category_all != Category.INVISIBLE))
        event = chunk.event_index()[index]
        self._count_unknown(chunk.pdg[index], unknown_all[index])

        spot = self.config.beam_spot
        spot_sigma = np.array([spot.sigma_x_cm, spot.sigma_y_cm, spot.sigma_z_cm])
        event_offset = spot_sigma[None, :] * rng.standard_normal((chunk.num_events, 3))
        p4 = chunk.p4[index]
        momentum_sq = np.einsum("ij,ij->i", p4[:, :3], p4[:, :3])
        return VisibleParticles(
            index=index,
            event=event,
            truth_index=(index - chunk.offsets[event]).astype(np.int32),
            category=category_all[index],
            charge=charge_all[index],
            p4=p4,
            mass=np.sqrt(np.maximum(p4[:, 3] ** 2 - momentum_sq, 0.0)),
            vertex=chunk.vertex[index] + event_offset[event],
        )

    def _count_unknown(self, pdg: np.ndarray, unknown: np.ndarray) -> None:
        """Count final-state particles outside the response table; warn once per new PDG code."""
        if not unknown.any():
            return
        self.unknown_particle_count += int(unknown.sum())
        codes = set(np.unique(pdg[unknown]).tolist())
        new_codes = sorted(codes - self._reported_codes)
        if new_codes:
            self._reported_codes.update(new_codes)
            logger.warning(
                "%d final-state particles have PDG codes outside the detector-response table (new codes %s); "
                "charged ones are treated as charged hadrons, neutral ones as neutral hadrons. "
                "DetectorResponse.unknown_particle_count keeps the running total.",
                int(unknown.sum()),
                new_codes[:10],
            )
