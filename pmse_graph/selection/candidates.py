"""Good charged tracks and good photons of reconstructed ntuple events, with their fit errors.

:func:`iterate_candidates` reads the ntuple branches the selection needs in chunks with
``uproot.iterate`` and turns each chunk into :class:`EventCandidates`. These contain, per
event, the counts and vetoes that need no fit and the two good tracks as ``(p, theta, phi)``
(positive track first). The good photons come as flat ``(E, theta, phi)`` rows.

The good-track and good-photon selections are the detector response's own
(:mod:`pmse_graph.simulation.detector.selection`), so ``nGoodCharged`` and ``nGoodNeutral``
of generated files agree with the counts here. The errors used by the kinematic fit come
from the same detector parameters: ``sigma_p / p`` and the angle resolution of the MDC,
the energy and position resolution of the EMC region a photon hits. A photon's direction
is taken from the mean ``vz0`` of the good tracks on the beam line to the shower position.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import awkward as ak
import numpy as np
import uproot

from pmse_graph.data.validate import expand_files, nearest_names, open_tree
from pmse_graph.errors import DataError
from pmse_graph.physics.pdg import PION_MASS
from pmse_graph.simulation.detector.config import DetectorConfig
from pmse_graph.simulation.detector.emc import position_resolution_cm, relative_energy_resolution
from pmse_graph.simulation.detector.geometry import impact_on_cylinder
from pmse_graph.simulation.detector.mdc import momentum_resolution
from pmse_graph.simulation.detector.selection import good_charged_mask, good_photon_mask

logger = logging.getLogger(__name__)

TREE_NAME = "evt"
MISSING = 9999.0
"""Value the ntuple writes for missing sub-detector information."""

KAON_MASS = 0.493677
"""Charged kaon mass in GeV (PDG 2022), the hypothesis of the K+K-pi0 veto fit."""

EVENT_BRANCHES = ("run", "event", "topo_tree_id")
TRACK_BRANCHES = (
    "q", "mdc_p3_px", "mdc_p3_py", "mdc_p3_pz", "vz0", "vr0", "pid_prob_pi", "pid_prob_K",
    "emc_energy", "emc_x", "emc_y", "emc_z", "emc_time", "EoP", "muc_dpt",
)  # fmt: skip


@dataclass
class EventCandidates:
    """Selection inputs of one chunk of events.

    Attributes:
        source: file the chunk comes from.
        entry_start: entry of the first event in that file.
        run, event, tree_id: per-event identifiers and the decay-tree class id, shape ``(n,)``.
        num_good_tracks: good charged tracks per event, shape ``(n,)``.
        net_charge: charge sum of the good tracks, shape ``(n,)``.
        pion_like: both good tracks pass the pion identification, shape ``(n,)`` bool.
        max_eop: largest E/p of the good tracks (0 without matched shower), shape ``(n,)``.
        max_muc_depth: largest MUC depth of the good tracks in cm (0 without hits), shape ``(n,)``.
        tracks: ``(p, theta, phi)`` of the positive and the negative good track, NaN unless the
            event has exactly two good tracks of opposite charge, shape ``(n, 2, 3)``.
        track_sigma_pion, track_sigma_kaon: their errors under the pion and the kaon
            hypothesis, shape ``(n, 2, 3)``.
        photon_offsets: start of each event's good photons in the flat arrays, shape ``(n + 1,)``.
        photons: ``(E, theta, phi)`` of the good photons, shape ``(k, 3)``.
        photon_sigma: their errors, shape ``(k, 3)``.
        track_slot: position of the two tracks in the event's jagged branches, -1 where
            ``tracks`` is NaN, shape ``(n, 2)``.
        photon_slot: position of each good photon in its event's jagged branches, shape ``(k,)``.
    """

    source: str
    entry_start: int
    run: np.ndarray
    event: np.ndarray
    tree_id: np.ndarray
    num_good_tracks: np.ndarray
    net_charge: np.ndarray
    pion_like: np.ndarray
    max_eop: np.ndarray
    max_muc_depth: np.ndarray
    tracks: np.ndarray
    track_sigma_pion: np.ndarray
    track_sigma_kaon: np.ndarray
    photon_offsets: np.ndarray
    photons: np.ndarray
    photon_sigma: np.ndarray
    track_slot: np.ndarray
    photon_slot: np.ndarray

    @property
    def num_events(self) -> int:
        return int(self.event.shape[0])

    @property
    def num_good_photons(self) -> np.ndarray:
        return np.diff(self.photon_offsets)


def validate_inputs(files: str | os.PathLike[str] | list[str | os.PathLike[str]]) -> list[str]:
    """Expand globs and check that every file has the tree and the branches the selection reads.

    Raises:
        DataError: listing every missing file, tree or branch with the nearest branch names.
    """
    paths = expand_files(files)
    problems = []
    for path in paths:
        try:
            handle, tree = open_tree(path, TREE_NAME)
        except DataError as exc:
            problems.append(str(exc))
            continue
        with handle:
            available = list(tree.keys())
            for name in EVENT_BRANCHES + TRACK_BRANCHES:
                if name not in available:
                    near = nearest_names(name, available)
                    problems.append(f"{path}: branch '{name}' not found in tree '{TREE_NAME}'; nearest branches: {near or 'none'}")
    if problems:
        raise DataError(
            "Input files cannot be read by the selection (it needs the reconstructed ntuple branches):\n  " + "\n  ".join(problems)
        )
    return paths


def _flat(array: ak.Array, name: str, where: str, entry_start: int) -> np.ndarray:
    """Return a branch as a flat float64 array, raising on NaN or infinity with the entry."""
    values = ak.to_numpy(ak.flatten(array[name], axis=None)).astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        if array[name].ndim > 1:
            counts = ak.to_numpy(ak.num(array[name]))
            entry = int(np.searchsorted(np.cumsum(counts), np.flatnonzero(bad)[0], side="right"))
        else:
            entry = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: branch '{name}' has a non-finite value at entry {entry_start + entry}; "
            "the selection cannot fit such events, so fix or remove the entry"
        )
    return values


def track_sigma(momentum: np.ndarray, mass: float, config: DetectorConfig) -> np.ndarray:
    """Return the errors of ``(p, theta, phi)`` of tracks with momentum magnitudes ``momentum`` (GeV/c).

    Shapes:
        momentum: (...,); returns (..., 3).
    """
    p = np.maximum(momentum, 1e-6)
    sigma_p = p * momentum_resolution(momentum=p, mass=np.full_like(p, mass), config=config.mdc)
    sigma_angle = 1e-3 * np.hypot(config.mdc.sigma_angle_mrad, config.mdc.sigma_angle_scattering_mrad_gev / p)
    return np.stack([sigma_p, sigma_angle, sigma_angle], axis=-1)


def photon_sigma(energy: np.ndarray, theta: np.ndarray, distance: np.ndarray, transverse: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """Return the errors of ``(E, theta, phi)`` of showers, shape ``(k, 3)``.

    The position error (cm) turns into angle errors over the distance from the vertex
    (theta) and from the beam line (phi).
    """
    emc = config.emc
    barrel = np.abs(np.cos(theta)) < emc.barrel_max_abs_cos_theta
    relative = np.where(barrel, relative_energy_resolution(energy, emc.barrel), relative_energy_resolution(energy, emc.endcap))
    position = np.where(barrel, position_resolution_cm(energy, emc.barrel), position_resolution_cm(energy, emc.endcap))
    return np.stack([relative * energy, position / np.maximum(distance, 1.0), position / np.maximum(transverse, 1.0)], axis=1)


def build_candidates(
    arrays: ak.Array, *, config: DetectorConfig, source: str = "<memory>", entry_start: int = 0, min_pion_probability: float = 0.001
) -> EventCandidates:
    """Select good tracks and photons of one chunk of ntuple events.

    Args:
        arrays: the chunk with the branches of ``EVENT_BRANCHES`` and ``TRACK_BRANCHES``.
        config: detector parameters (selection cuts and resolutions).
        source: file name for error messages.
        entry_start: entry of the chunk's first event in that file, for error messages.
        min_pion_probability: a good track counts as a pion when ``pid_prob_pi`` reaches this
            or exceeds ``pid_prob_K`` (default 0.001).
    """
    num_events = len(arrays)
    counts = ak.to_numpy(ak.num(arrays["q"])).astype(np.int64)
    event_of = np.repeat(np.arange(num_events), counts)
    column = {name: _flat(arrays, name, source, entry_start) for name in TRACK_BRANCHES}
    charge = column["q"]
    momentum = np.stack([column["mdc_p3_px"], column["mdc_p3_py"], column["mdc_p3_pz"]], axis=1)
    position = np.stack([column["emc_x"], column["emc_y"], column["emc_z"]], axis=1)

    # good charged tracks and their per-event summaries
    charged = charge != 0
    good = charged & good_charged_mask(momentum=momentum, vz0=column["vz0"], vr0=column["vr0"], config=config.selection.good_charged)
    num_good = np.bincount(event_of[good], minlength=num_events)
    net_charge = np.bincount(event_of[good], weights=charge[good], minlength=num_events).astype(np.int64)
    pion = (column["pid_prob_pi"] >= min_pion_probability) | (column["pid_prob_pi"] > column["pid_prob_K"])
    pion_like = np.bincount(event_of[good & ~pion], minlength=num_events) == 0
    eop = np.where(column["EoP"] >= MISSING, 0.0, column["EoP"])
    max_eop = np.zeros(num_events)
    np.maximum.at(max_eop, event_of[good], eop[good])
    depth = np.where(column["muc_dpt"] >= MISSING, 0.0, column["muc_dpt"])
    max_depth = np.zeros(num_events)
    np.maximum.at(max_depth, event_of[good], depth[good])
    vertex_z = np.bincount(event_of[good], weights=column["vz0"][good], minlength=num_events) / np.maximum(num_good, 1)

    # the two tracks of two-track, zero-charge events as (p, theta, phi), positive first
    p = np.linalg.norm(momentum, axis=1)
    theta = np.arccos(np.clip(momentum[:, 2] / np.maximum(p, 1e-12), -1.0, 1.0))
    phi = np.arctan2(momentum[:, 1], momentum[:, 0])
    pair = (num_good == 2) & (net_charge == 0)
    slot_in_event = np.arange(charge.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    tracks = np.full((num_events, 2, 3), np.nan)
    track_slot = np.full((num_events, 2), -1, dtype=np.int64)
    for slot, sign in enumerate((1.0, -1.0)):
        chosen = good & pair[event_of] & (charge == sign)
        tracks[event_of[chosen], slot] = np.stack([p[chosen], theta[chosen], phi[chosen]], axis=1)
        track_slot[event_of[chosen], slot] = slot_in_event[chosen]

    # good photons: isolation from every charged track's impact on the EMC
    neutral = (charge == 0) & (column["emc_energy"] < MISSING)
    impact = impact_on_cylinder(
        vertex=np.stack([np.zeros(charged.sum()), np.zeros(charged.sum()), column["vz0"][charged]], axis=1),
        momentum=momentum[charged],
        charge=charge[charged],
        field_tesla=config.solenoid_field_tesla,
        radius_cm=config.emc.barrel_radius_cm,
        half_length_cm=config.emc.endcap_z_cm,
    )
    photon = neutral.copy()
    photon[neutral] = good_photon_mask(
        event=event_of[neutral],
        energy=column["emc_energy"][neutral],
        position=position[neutral],
        time=column["emc_time"][neutral],
        track_event=event_of[charged][impact.reached],
        track_position=impact.position[impact.reached],
        config=config.selection.good_photon,
        num_events=num_events,
    )
    photon_event = event_of[photon]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(photon_event, minlength=num_events))])
    relative = position[photon] - np.stack([np.zeros(photon.sum()), np.zeros(photon.sum()), vertex_z[photon_event]], axis=1)
    distance = np.linalg.norm(relative, axis=1)
    transverse = np.hypot(relative[:, 0], relative[:, 1])
    photon_theta = np.arccos(np.clip(relative[:, 2] / np.maximum(distance, 1e-12), -1.0, 1.0))
    photon_phi = np.arctan2(relative[:, 1], relative[:, 0])
    energy = column["emc_energy"][photon]
    photons = np.stack([energy, photon_theta, photon_phi], axis=1)

    track_p = tracks[:, :, 0]
    return EventCandidates(
        source=source,
        entry_start=entry_start,
        run=ak.to_numpy(arrays["run"]).astype(np.int64),
        event=ak.to_numpy(arrays["event"]).astype(np.int64),
        tree_id=ak.to_numpy(arrays["topo_tree_id"]).astype(np.int64),
        num_good_tracks=num_good.astype(np.int64),
        net_charge=net_charge,
        pion_like=pion_like,
        max_eop=max_eop,
        max_muc_depth=max_depth,
        tracks=tracks,
        track_sigma_pion=track_sigma(np.nan_to_num(track_p, nan=1.0), PION_MASS, config),
        track_sigma_kaon=track_sigma(np.nan_to_num(track_p, nan=1.0), KAON_MASS, config),
        photon_offsets=offsets.astype(np.int64),
        photons=photons,
        photon_sigma=photon_sigma(energy, photon_theta, distance, transverse, config),
        track_slot=track_slot,
        photon_slot=slot_in_event[photon],
    )


def iterate_candidates(
    paths: list[str], *, config: DetectorConfig, step_size: int = 50_000, min_pion_probability: float = 0.001
) -> Iterator[EventCandidates]:
    """Yield :class:`EventCandidates` chunk by chunk over validated files (see :func:`validate_inputs`)."""
    for path in paths:
        entry_start = 0
        branches = list(EVENT_BRANCHES + TRACK_BRANCHES)
        chunks = uproot.iterate({path: TREE_NAME}, branches, step_size=step_size, library="ak")
        while True:
            try:
                arrays = next(chunks)
            except StopIteration:
                break
            except (OSError, ValueError, uproot.deserialization.DeserializationError) as exc:
                # validation reads the header only; a file cut short fails here, at its first lost basket
                raise DataError(
                    f"{path}: reading tree '{TREE_NAME}' failed after entry {entry_start} ({exc}). "
                    "The file may be truncated or corrupt; regenerate or re-copy it."
                ) from exc
            yield build_candidates(
                arrays, config=config, source=path, entry_start=entry_start, min_pion_probability=min_pion_probability
            )
            entry_start += len(arrays)
