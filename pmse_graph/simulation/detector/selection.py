"""Good charged-track and good-photon selections behind the per-event condition counts.

A good charged track has its point of closest approach within ``|Vz| < 10 cm``
and ``Vr < 1 cm`` and ``|cos theta| < 0.93``. A good photon is a neutral shower in
the barrel (``|cos theta| < 0.80``, E > 25 MeV) or the endcaps (``0.86 < |cos theta| <
0.92``, E > 50 MeV), with EMC time in ``[0, 14]`` (50 ns units) and more than 10
degrees from every charged track's impact point on the EMC. The numbers quoted
are the BESIII defaults; the values used come from :class:`SelectionConfig`.
"""

from __future__ import annotations

import numpy as np

from pmse_graph.simulation.detector.config import GoodChargedConfig, GoodPhotonConfig
from pmse_graph.simulation.detector.geometry import cos_angle_of_pairs, cos_theta, event_pairs, unit_vectors


def good_charged_mask(*, momentum: np.ndarray, vz0: np.ndarray, vr0: np.ndarray, config: GoodChargedConfig) -> np.ndarray:
    """Return which tracks pass the good-track selection, shape ``(m,)`` bool."""
    return (
        (np.abs(vz0) < config.max_abs_vz_cm)
        & (vr0 < config.max_vr_cm)
        & (np.abs(cos_theta(momentum)) < config.max_abs_cos_theta)
    )


def count_good_charged(
    *, event: np.ndarray, momentum: np.ndarray, vz0: np.ndarray, vr0: np.ndarray, config: GoodChargedConfig, num_events: int
) -> np.ndarray:
    """Count good charged tracks per event, shape ``(num_events,)`` int32."""
    good = good_charged_mask(momentum=momentum, vz0=vz0, vr0=vr0, config=config)
    return np.bincount(event[good], minlength=num_events).astype(np.int32)


def good_photon_mask(
    *,
    event: np.ndarray,
    energy: np.ndarray,
    position: np.ndarray,
    time: np.ndarray,
    track_event: np.ndarray,
    track_position: np.ndarray,
    config: GoodPhotonConfig,
    num_events: int,
) -> np.ndarray:
    """Return which neutral showers pass the good-photon selection, shape ``(k,)`` bool.

    Args:
        event: event index per shower, sorted ascending, shape ``(k,)``.
        energy: shower energies, shape ``(k,)`` GeV.
        position: shower positions, shape ``(k, 3)`` cm.
        time: shower times, shape ``(k,)`` in 50 ns units.
        track_event: event index per charged track, sorted ascending, shape ``(t,)``.
        track_position: the tracks' impact points on the EMC, shape ``(t, 3)`` cm.
        config: selection cuts.
        num_events: number of events in the chunk.
    """
    abs_cos = np.abs(cos_theta(position))
    barrel = (abs_cos < config.barrel_max_abs_cos_theta) & (energy > config.barrel_min_energy_gev)
    endcap = (
        (abs_cos > config.endcap_min_abs_cos_theta)
        & (abs_cos < config.endcap_max_abs_cos_theta)
        & (energy > config.endcap_min_energy_gev)
    )
    in_time = (time >= config.min_time) & (time <= config.max_time)

    # largest cosine (smallest angle) to any charged track of the same event
    rows, track_rows = event_pairs(event, track_event, num_events)
    nearest_cos = np.full(event.shape[0], -1.0)
    cos_pairs = cos_angle_of_pairs(unit_vectors(position), unit_vectors(track_position), rows, track_rows)
    np.maximum.at(nearest_cos, rows, cos_pairs)
    isolated = nearest_cos < np.cos(np.deg2rad(config.min_angle_to_track_deg))
    return (barrel | endcap) & in_time & isolated


def count_good_photons(
    *,
    event: np.ndarray,
    energy: np.ndarray,
    position: np.ndarray,
    time: np.ndarray,
    track_event: np.ndarray,
    track_position: np.ndarray,
    config: GoodPhotonConfig,
    num_events: int,
) -> np.ndarray:
    """Count good photons per event, shape ``(num_events,)`` int32; arguments as :func:`good_photon_mask`."""
    good = good_photon_mask(
        event=event,
        energy=energy,
        position=position,
        time=time,
        track_event=track_event,
        track_position=track_position,
        config=config,
        num_events=num_events,
    )
    return np.bincount(event[good], minlength=num_events).astype(np.int32)
