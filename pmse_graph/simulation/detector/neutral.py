"""Neutral EMC showers of a chunk: clusters without a track, split-offs, merging and threshold.

A neutral shower comes from a particle without an MDC track (photon, neutral
hadron, antineutron, or a charged particle the MDC missed), from a split-off
fragment of a track's hadronic shower, or from beam background and noise. The
last two have truth index -1. Showers of one event closer than the merge angle
merge, and the survivors below the cluster threshold are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmse_graph.simulation.detector import emc
from pmse_graph.simulation.detector.config import EmcConfig
from pmse_graph.simulation.detector.emc_shape import SHOWER_EM, SHOWER_HADRONIC


@dataclass
class NeutralShowers:
    """Neutral showers sorted by event, each array of shape ``(k,)`` or ``(k, 3)``.

    Attributes:
        event: event index.
        energy: cluster energy, GeV.
        position: shower position, cm.
        time: time in 50 ns units.
        kind: shower class for the shape variables.
        truth_index: index of the truth particle within its event, -1 for split-offs.
    """

    event: np.ndarray
    energy: np.ndarray
    position: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    truth_index: np.ndarray


def split_track_showers(
    *, clusters: emc.Clusters, parents: np.ndarray, config: EmcConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detach split-offs from the hadronic clusters ``clusters[parents]``, lowering the parents' energy in place.

    Returns:
        ``(parent, energy, position, time)`` of the fragments that land on crystals: the
        row of ``clusters`` each came from, shapes ``(f,)``, ``(f,)``, ``(f, 3)`` and ``(f,)``.
    """
    parent_of, energy, position, energy_left = emc.split_off(
        parent_energy=clusters.energy[parents], parent_position=clusters.position[parents], config=config, rng=rng
    )
    clusters.energy[parents] = energy_left
    on_crystals = emc.region_of(position, config) != emc.REGION_NONE
    parent = parents[parent_of][on_crystals]
    time = np.round(config.time.mean + config.time.sigma * rng.standard_normal(parent.shape[0]))
    return parent, energy[on_crystals], position[on_crystals], time


def noise_clusters(
    *, num_events: int, config: EmcConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw beam-background and noise clusters for every event of a chunk.

    Returns:
        ``(event, energy, position, time)`` with shapes ``(g,)``, ``(g,)``, ``(g, 3)`` and ``(g,)``,
        sorted by event.
    """
    noise = config.noise
    counts = rng.poisson(noise.mean_count, size=num_events)
    event = np.repeat(np.arange(num_events, dtype=np.int64), counts)
    g = event.shape[0]
    cos = rng.uniform(-config.endcap_max_abs_cos_theta, config.endcap_max_abs_cos_theta, size=g)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=g)
    sin = np.sqrt(1.0 - cos**2)
    direction = np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)
    position = emc.project_to_emc(direction, config)
    energy = config.cluster_threshold_gev + rng.exponential(noise.energy_scale_gev, size=g)
    time = np.floor(rng.uniform(0.0, noise.max_time, size=g))
    return event, energy, position, time


def build_neutral_showers(
    *,
    clusters: emc.Clusters,
    sources: np.ndarray,
    fragments: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    noise: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    event: np.ndarray,
    truth_index: np.ndarray,
    num_events: int,
    config: EmcConfig,
) -> NeutralShowers:
    """Collect, order, merge and threshold the neutral showers of a chunk.

    Args:
        clusters: clusters of all visible particles.
        sources: rows of ``clusters`` that become neutral showers, ascending.
        fragments: split-offs from :func:`split_track_showers`.
        noise: noise clusters from :func:`noise_clusters`.
        event: event index of every row of ``clusters``, shape ``(n,)``.
        truth_index: truth index within the event of every row of ``clusters``, shape ``(n,)``.
        num_events: number of events in the chunk.
        config: EMC parameters.
    """
    parent, fragment_energy, fragment_position, fragment_time = fragments
    noise_event, noise_energy, noise_position, noise_time = noise
    num_fragments = parent.shape[0]
    num_noise = noise_event.shape[0]

    # event order; within an event, particle order with each fragment after its parent's slot
    # and the noise clusters last
    shower_event = np.concatenate([event[sources], event[parent], noise_event])
    last = float(clusters.energy.shape[0])
    order = np.concatenate([sources.astype(np.float64), parent + 0.5, np.full(num_noise, last)])
    sort = np.lexsort((order, shower_event))
    kind = np.concatenate(
        [clusters.kind[sources], np.full(num_fragments, SHOWER_HADRONIC, np.int8), np.full(num_noise, SHOWER_EM, np.int8)]
    )
    showers = NeutralShowers(
        event=shower_event[sort],
        energy=np.concatenate([clusters.energy[sources], fragment_energy, noise_energy])[sort],
        position=np.concatenate([clusters.position[sources], fragment_position, noise_position])[sort],
        time=np.concatenate([clusters.time[sources], fragment_time, noise_time])[sort],
        kind=kind[sort],
        truth_index=np.concatenate([truth_index[sources], np.full(num_fragments + num_noise, -1, np.int32)])[sort],
    )

    # merge close showers, then apply the cluster threshold
    showers.energy, survives = emc.merge_close(
        energy=showers.energy, position=showers.position, event=showers.event, num_events=num_events, config=config
    )
    keep = survives & (showers.energy >= config.cluster_threshold_gev)
    return NeutralShowers(
        event=showers.event[keep],
        energy=showers.energy[keep],
        position=showers.position[keep],
        time=showers.time[keep],
        kind=showers.kind[keep],
        truth_index=showers.truth_index[keep],
    )
