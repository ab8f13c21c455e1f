"""The rho pi cut flow: per-event class or "not selected" with the first step that failed.

Steps, in order (each event's reason is the first one it fails):

1. exactly two good charged tracks; 2. net charge 0; 3. pion identification (optional);
4. at least two good photons; 5. e+e- veto (E/p); 6. mu+mu- veto (MUC depth);
7. K+K-pi0 veto (lower 4C chi2 as K+K-gamma gamma); 8. gamma pi+pi- veto (lower chi2 with
one photon); 9. extra-photon veto (lower chi2 with three photons); 10. 4C fit with chi2
below the maximum; 11. 5C fit with chi2 below the maximum (or the M(gamma gamma) window
with ``fit="4C"``); 12. mass classification.

The three hypothesis vetoes come before the chi2 maximum on purpose. Under the pion
hypothesis, a K+K-pi0 event's 4C chi2 is usually above the maximum, so a veto placed
after that cut would reject almost no event, and the cut flow would hide what it does. The
selected events are the same in either order, since an event must pass every step.

Classification uses the distances of ``M(pi+pi-)``, ``M(pi-pi0)`` and ``M(pi+pi0)`` from
m(rho). The nearest band wins when it lies within Delta and beats the second nearest by the
overlap margin. An event is non-resonant when every distance exceeds Delta plus the
non-resonant margin, and anything else is not selected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pmse_graph.selection.config import SelectionCuts, TightCuts, cuts_at
from pmse_graph.topology.table import TopologyTable

CLASSES: tuple[str, ...] = ("pi+ rho-", "pi- rho+", "pi0 rho0", "pi+ pi- pi0")
"""Predicted classes; the first three name J/psi -> pi rho, the last the non-resonant decay."""
NOT_SELECTED = "not selected"
OTHER = "other"
"""Truth class of the events outside :data:`CLASSES`."""
UNKNOWN = "unknown"
"""Truth class when no topology table is available."""

TRUTH_TREES: dict[str, str] = {
    "J/psi --> pi+ rho-; rho- --> pi0 pi-": "pi+ rho-",
    "J/psi --> pi- rho+; rho+ --> pi0 pi+": "pi- rho+",
    "J/psi --> pi0 rho0; rho0 --> pi+ pi-": "pi0 rho0",
    "J/psi --> pi0 pi+ pi-": "pi+ pi- pi0",
}
"""Decay-tree strings (TopoAna convention, pi0 -> gamma gamma dropped) of the truth classes."""
PHOTOS_PHOTON = "gammaf"
"""Name of a PHOTOS radiation photon in the decay-tree strings (:mod:`pmse_graph.topology.names`)."""

STEPS: tuple[tuple[str, str], ...] = (
    ("two good tracks", "not exactly two good charged tracks"),
    ("net charge 0", "net charge of the good tracks is not 0"),
    ("pion identification", "a track fails the pion identification"),
    ("two good photons", "fewer than two good photons"),
    ("e+e- veto", "E/p above the e+e- veto"),
    ("mu+mu- veto", "MUC depth above the mu+mu- veto"),
    ("K+K-pi0 veto", "lower chi2 as K+K-gamma gamma"),
    ("gamma pi+pi- veto", "lower chi2 with one photon"),
    ("extra-photon veto", "lower chi2 with three photons"),
    ("4C fit", "no 4C fit below the chi2 maximum"),
    ("5C fit or pi0 window", "no 5C fit below the chi2 maximum or M(gamma gamma) outside the pi0 window"),
    ("mass classification", "masses between the rho bands and the non-resonant region"),
)
"""``(step name, reason given to events that fail it)`` in cut-flow order."""
OVERLAP_REASON = "overlapping rho bands"


@dataclass
class Decision:
    """Per-event outcome at one tightness.

    Attributes:
        predicted: class name or :data:`NOT_SELECTED`, shape ``(n,)`` object.
        reason: empty for selected events, else why the event was not selected, shape ``(n,)`` object.
        failed_step: index into :data:`STEPS` of the failed step, -1 for selected events, shape ``(n,)``.
        cuts: the tightness-dependent cuts used.
    """

    predicted: np.ndarray
    reason: np.ndarray
    failed_step: np.ndarray
    cuts: TightCuts


def step_passes(frame: pd.DataFrame, cuts: SelectionCuts, tight: TightCuts) -> list[np.ndarray]:
    """Return one bool array per step of :data:`STEPS`, True where the event passes that step alone."""
    chi2_4c = frame["chi2_4c"].to_numpy()
    if cuts.fit == "5C":
        second_fit = frame["chi2_5c"].to_numpy() < tight.max_chi2
    else:
        m_gg = frame["m_gg"].to_numpy()
        second_fit = (m_gg > cuts.pi0_window_gev[0]) & (m_gg < cuts.pi0_window_gev[1])
    selected, _ = classify_masses(frame, cuts, tight)
    return [
        frame["num_good_tracks"].to_numpy() == 2,
        frame["net_charge"].to_numpy() == 0,
        frame["pion_like"].to_numpy() | (not cuts.pion_id),
        frame["num_good_photons"].to_numpy() >= 2,
        frame["max_eop"].to_numpy() <= cuts.max_eop,
        frame["max_muc_depth"].to_numpy() <= cuts.max_muc_depth_cm,
        ~(frame["chi2_kk"].to_numpy() < chi2_4c),
        ~(frame["chi2_1gamma"].to_numpy() < chi2_4c),
        ~(frame["chi2_3gamma"].to_numpy() < chi2_4c),
        chi2_4c < tight.max_chi2,
        second_fit,
        selected >= 0,
    ]


def classify_masses(frame: pd.DataFrame, cuts: SelectionCuts, tight: TightCuts) -> tuple[np.ndarray, np.ndarray]:
    """Return the index into :data:`CLASSES` per event (-1 for none) and where the rho bands overlapped.

    ``frame`` needs the columns ``m_minus``, ``m_plus`` and ``m_pipi`` (GeV, NaN when not fitted).
    """
    # column order matches CLASSES: pi+ rho- has rho- -> pi- pi0, pi- rho+ has rho+ -> pi+ pi0
    masses = frame[["m_minus", "m_plus", "m_pipi"]].to_numpy()
    distance = np.abs(masses - cuts.rho_mass)
    distance = np.where(np.isfinite(distance), distance, np.inf)
    ordered = np.sort(distance, axis=1)
    nearest = np.argmin(distance, axis=1)
    in_band = ordered[:, 0] < tight.delta_gev
    with np.errstate(invalid="ignore"):  # inf - inf for events without masses, which are not in a band anyway
        clear = ordered[:, 1] - ordered[:, 0] > tight.overlap_margin_gev
    nonresonant = np.isfinite(ordered[:, 0]) & (ordered[:, 0] > tight.delta_gev + tight.nonresonant_margin_gev)
    label = np.full(len(frame), -1, dtype=np.int64)
    label[in_band & clear] = nearest[in_band & clear]
    label[nonresonant] = len(CLASSES) - 1
    return label, in_band & ~clear


def decide(frame: pd.DataFrame, *, cuts: SelectionCuts, tightness: float) -> Decision:
    """Classify every event of ``frame`` (from :func:`pmse_graph.selection.fits.fit_events`) at one tightness."""
    tight = cuts_at(cuts, tightness)
    passes = step_passes(frame, cuts, tight)
    failed_step = np.full(len(frame), -1, dtype=np.int64)
    for index in reversed(range(len(STEPS))):
        failed_step[~passes[index]] = index
    label, overlap = classify_masses(frame, cuts, tight)

    names = np.array(CLASSES + (NOT_SELECTED,), dtype=object)
    predicted = names[np.where(failed_step < 0, label, len(CLASSES))]
    reasons = np.array([reason for _, reason in STEPS] + [""], dtype=object)
    reason = reasons[failed_step]
    reason[(failed_step == len(STEPS) - 1) & overlap] = OVERLAP_REASON
    return Decision(predicted=predicted, reason=reason, failed_step=failed_step, cuts=tight)


def cut_flow(decision: Decision) -> pd.DataFrame:
    """Return the cut-flow table: per step, events that reach it, fail it and remain after it.

    The first row is the input. ``remaining`` of the last row equals the selected events, so
    every event appears either in exactly one ``failed`` count or in that last ``remaining``.
    """
    total = decision.failed_step.shape[0]
    failed = np.bincount(decision.failed_step[decision.failed_step >= 0], minlength=len(STEPS))
    remaining = total - np.cumsum(failed)
    rows = [{"step": "all events", "events_in": total, "failed": 0, "remaining": total}]
    for index, (name, _) in enumerate(STEPS):
        before = total if index == 0 else int(remaining[index - 1])
        rows.append({"step": name, "events_in": before, "failed": int(failed[index]), "remaining": int(remaining[index])})
    return pd.DataFrame(rows)


def without_photos_photons(tree: str) -> str:
    """Return a decay-tree string with the PHOTOS radiation photons (``gammaf``) removed.

    ``"J/psi --> pi0 rho0; rho0 --> pi+ pi- gammaf"`` becomes
    ``"J/psi --> pi0 rho0; rho0 --> pi+ pi-"``. Other photons, such as the ``gammaF`` of a
    radiative decay, stay, because they change the physics of the event.
    """
    decays = []
    for decay in tree.split("; "):
        parent, arrow, daughters = decay.partition(" --> ")
        if not arrow:
            decays.append(decay)
            continue
        kept = [name for name in daughters.split(" ") if name != PHOTOS_PHOTON]
        decays.append(f"{parent} --> {' '.join(kept)}")
    return "; ".join(decays)


def truth_classes(tree_id: np.ndarray, topology: TopologyTable | str | os.PathLike[str] | None) -> np.ndarray:
    """Map decay-tree ids to truth class names through a topology table.

    A tree counts in a class of :data:`TRUTH_TREES` also when it differs from that class's
    string only by PHOTOS radiation photons (see :func:`without_photos_photons`): such an
    event is the same decay with soft final-state radiation, so it is signal. Other trees give
    :data:`OTHER`; without a table every event is :data:`UNKNOWN`.
    """
    if topology is None:
        return np.full(tree_id.shape[0], UNKNOWN, dtype=object)
    table = topology if isinstance(topology, TopologyTable) else TopologyTable.read_csv(topology)
    frame = table.to_frame()
    lookup = {int(row.id): TRUTH_TREES.get(without_photos_photons(row.tree), OTHER) for row in frame.itertuples(index=False)}
    names = np.array([lookup.get(int(value), OTHER) for value in np.unique(tree_id)], dtype=object)
    return names[np.searchsorted(np.unique(tree_id), tree_id)] if tree_id.size else np.zeros(0, dtype=object)
