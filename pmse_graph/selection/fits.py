"""Kinematic fits of the rho pi selection over every photon combination of each event.

:func:`fit_events` takes the candidates of one chunk (:mod:`pmse_graph.selection.candidates`)
and, for the events that pass the fit-free steps of the selection, runs these fits to the
J/psi four-momentum, each over all photon combinations, keeping the lowest chi2 per event:

- 4C ``pi+ pi- gamma gamma`` and 5C with ``M(gamma gamma) = m(pi0)`` in addition;
- 4C ``K+ K- gamma gamma`` for the K+K-pi0 veto;
- 4C ``pi+ pi- gamma`` and 4C ``pi+ pi- gamma gamma gamma`` for the radiative and
  extra-photon vetoes.

The result is one row per event with everything the tightness-dependent steps need, so a
scan over the tightness reuses the fits.
"""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pandas as pd

from pmse_graph.physics.pdg import PI0_MASS, PION_MASS
from pmse_graph.selection.candidates import KAON_MASS, EventCandidates
from pmse_graph.selection.config import SelectionCuts
from pmse_graph.selection.kinfit import MassConstraint, kinematic_fit_batched

logger = logging.getLogger(__name__)


def beam_four_momentum(cuts: SelectionCuts) -> np.ndarray:
    """Return the J/psi four-momentum ``(px, py, pz, E)`` in GeV from the beam crossing angle."""
    angle = cuts.crossing_half_angle
    return np.array([cuts.jpsi_mass * np.tan(angle), 0.0, 0.0, cuts.jpsi_mass / np.cos(angle)])


def preselected(candidates: EventCandidates, cuts: SelectionCuts) -> np.ndarray:
    """Return which events pass the steps before the fit (tracks, charge, PID, photons, lepton vetoes)."""
    passed = (candidates.num_good_tracks == 2) & (candidates.net_charge == 0) & (candidates.num_good_photons >= 2)
    if cuts.pion_id:
        passed &= candidates.pion_like
    return passed & (candidates.max_eop <= cuts.max_eop) & (candidates.max_muc_depth <= cuts.max_muc_depth_cm)


def _kept_photons(candidates: EventCandidates, events: np.ndarray, max_photons: int) -> ak.Array:
    """Return, per event of ``events``, the flat indices of its ``max_photons`` most energetic photons."""
    offsets = candidates.photon_offsets
    counts = np.diff(offsets)[events]
    # every photon of the chosen events, ordered by event then by falling energy
    owner = np.repeat(np.arange(events.shape[0]), counts)
    flat = np.repeat(offsets[events], counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    order = np.lexsort((-candidates.photons[flat, 0], owner))
    flat = flat[order]
    rank = np.arange(flat.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < max_photons
    return ak.unflatten(flat[keep], np.minimum(counts, max_photons))


def _best_fit(
    candidates: EventCandidates,
    events: np.ndarray,
    photons: ak.Array,
    *,
    num_photons: int,
    track_mass: float,
    track_sigma: np.ndarray,
    mass_constraints: tuple[MassConstraint, ...],
    total: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit every ``num_photons`` combination and keep the lowest chi2 per event.

    Returns:
        ``(chi2, p4)``: best chi2 per event of ``events`` (inf when no combination converged or
        the event has too few photons), shape ``(m,)``, and the fitted four-momenta of the best
        combination, tracks first, shape ``(m, 2 + num_photons, 4)`` (NaN where chi2 is inf).
    """
    num_events = events.shape[0]
    best_chi2 = np.full(num_events, np.inf)
    best_p4 = np.full((num_events, 2 + num_photons, 4), np.nan)
    combinations = ak.combinations(photons, num_photons) if num_photons > 1 else photons
    per_event = ak.to_numpy(ak.num(combinations))
    if per_event.sum() == 0:
        return best_chi2, best_p4
    owner = np.repeat(np.arange(num_events), per_event)
    if num_photons > 1:
        slots = [ak.to_numpy(ak.flatten(part)) for part in ak.unzip(combinations)]
    else:
        slots = [ak.to_numpy(ak.flatten(photons))]

    # one hypothesis per (event, combination): tracks then photons
    measured = np.concatenate([candidates.tracks[events[owner]]] + [candidates.photons[s][:, None] for s in slots], axis=1)
    sigma = np.concatenate([track_sigma[events[owner]]] + [candidates.photon_sigma[s][:, None] for s in slots], axis=1)
    mass = np.array([track_mass, track_mass] + [0.0] * num_photons)
    result = kinematic_fit_batched(measured=measured, sigma=sigma, mass=mass, total=total, mass_constraints=mass_constraints)

    # lowest chi2 per event: sort by (event, chi2) and take each event's first row
    order = np.lexsort((result.chi2, owner))
    first = order[np.concatenate([[True], owner[order][1:] != owner[order][:-1]])]
    best_chi2[owner[first]] = result.chi2[first]
    fitted = np.isfinite(result.chi2[first])
    best_p4[owner[first][fitted]] = result.p4[first][fitted]
    return best_chi2, best_p4


def _mass(p4: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(axis=-1), 0.0))


def fit_events(candidates: EventCandidates, *, cuts: SelectionCuts) -> pd.DataFrame:
    """Run the selection's fits on one chunk and return one row per event.

    The columns are ``run``, ``event``, ``tree_id`` and the fit-free quantities
    ``num_good_tracks``, ``net_charge``, ``pion_like``, ``num_good_photons``, ``max_eop`` and
    ``max_muc_depth``. Then come the lowest chi2 of each fit (``chi2_4c``, ``chi2_5c``,
    ``chi2_kk``, ``chi2_1gamma``, ``chi2_3gamma``), inf when not fitted or not converged.
    Last come the fitted ``m_gg`` of the best 4C pair and the masses ``m_pipi`` (pi+ pi-),
    ``m_plus`` (pi+ pi0) and ``m_minus`` (pi- pi0) from the best fit of ``cuts.fit``, NaN when
    not fitted.
    """
    num = candidates.num_events
    frame = pd.DataFrame(
        {
            "run": candidates.run,
            "event": candidates.event,
            "tree_id": candidates.tree_id,
            "num_good_tracks": candidates.num_good_tracks,
            "net_charge": candidates.net_charge,
            "pion_like": candidates.pion_like,
            "num_good_photons": candidates.num_good_photons,
            "max_eop": candidates.max_eop,
            "max_muc_depth": candidates.max_muc_depth,
        }
    )
    columns = {name: np.full(num, np.inf) for name in ("chi2_4c", "chi2_5c", "chi2_kk", "chi2_1gamma", "chi2_3gamma")}
    columns.update({name: np.full(num, np.nan) for name in ("m_gg", "m_pipi", "m_plus", "m_minus")})
    events = np.flatnonzero(preselected(candidates, cuts))
    if events.size:
        photons = _kept_photons(candidates, events, cuts.max_photons)
        capped = int((candidates.num_good_photons[events] > cuts.max_photons).sum())
        if capped:
            logger.info("%s: %d events have more than %d good photons; the fits use the most energetic ones",
                        candidates.source, capped, cuts.max_photons)
        total = beam_four_momentum(cuts)
        pi0 = (MassConstraint((2, 3), PI0_MASS),)
        fit = dict(total=total, track_mass=PION_MASS, track_sigma=candidates.track_sigma_pion)
        chi2_4c, p4_4c = _best_fit(candidates, events, photons, num_photons=2, mass_constraints=(), **fit)
        chi2_5c, p4_5c = _best_fit(candidates, events, photons, num_photons=2, mass_constraints=pi0, **fit)
        chi2_1g, _ = _best_fit(candidates, events, photons, num_photons=1, mass_constraints=(), **fit)
        chi2_3g, _ = _best_fit(candidates, events, photons, num_photons=3, mass_constraints=(), **fit)
        chi2_kk, _ = _best_fit(
            candidates, events, photons, num_photons=2, mass_constraints=(), total=total, track_mass=KAON_MASS,
            track_sigma=candidates.track_sigma_kaon,
        )  # fmt: skip
        p4 = p4_5c if cuts.fit == "5C" else p4_4c
        pi0_p4 = p4[:, 2] + p4[:, 3]
        columns["chi2_4c"][events] = chi2_4c
        columns["chi2_5c"][events] = chi2_5c
        columns["chi2_kk"][events] = chi2_kk
        columns["chi2_1gamma"][events] = chi2_1g
        columns["chi2_3gamma"][events] = chi2_3g
        columns["m_gg"][events] = _mass(p4_4c[:, 2] + p4_4c[:, 3])
        columns["m_pipi"][events] = _mass(p4[:, 0] + p4[:, 1])
        columns["m_plus"][events] = _mass(p4[:, 0] + pi0_p4)
        columns["m_minus"][events] = _mass(p4[:, 1] + pi0_p4)
    for name, values in columns.items():
        frame[name] = values
    return frame
