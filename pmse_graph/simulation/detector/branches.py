"""Per-track ntuple branches: column tables for charged and neutral rows, and the jagged layout.

The branch names and the 9999 convention follow ``docs/ntuple_format.md``.
Charged tracks carry MDC and PID variables, EMC variables when a cluster above
threshold is matched, and MUC variables when layers fired. Neutral showers carry
only EMC variables, charge 0 and their truth index.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from pmse_graph.simulation.detector.emc_shape import ShapeVariables
from pmse_graph.simulation.detector.geometry import EPS, row_norm
from pmse_graph.simulation.detector.mdc import MdcTracks
from pmse_graph.simulation.detector.muc import MucHits
from pmse_graph.simulation.detector.neutral import NeutralShowers
from pmse_graph.simulation.detector.pid import HYPOTHESIS_NAMES, PidResult

MISSING = 9999.0
"""Value written where a sub-detector has no information for a track."""

FLOAT_BRANCHES = (
    "mdc_p3_px", "mdc_p3_py", "mdc_p3_pz", "vz0", "vr0",
    "pid_prob_e", "pid_prob_mu", "pid_prob_pi", "pid_prob_K", "pid_prob_p",
    "emc_e3x3", "emc_e5x5", "emc_energy", "emc_x", "emc_y", "emc_z", "emc_time", "EoP", "emc_secmom", "emc_latmom",
    "muc_dpt", "muc_chisq",
)  # fmt: skip
INT_BRANCHES = (
    "q", "pid_prob_type", "emc_numHits", "muc_numLayer", "muc_maxHitsInlater", "muc_numHits", "muc_dof", "mc_idx",
)  # fmt: skip
COUNT_BRANCHES = ("nTracks", "nCharged", "nNeutral", "nGoodCharged", "nGoodNeutral")
TRACK_BRANCHES = FLOAT_BRANCHES + INT_BRANCHES


def _shape_columns(shapes: ShapeVariables, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "emc_e3x3": shapes.e3x3[rows],
        "emc_e5x5": shapes.e5x5[rows],
        "emc_numHits": shapes.num_hits[rows],
        "emc_secmom": shapes.second_moment[rows],
        "emc_latmom": shapes.lateral_moment[rows],
    }


def charged_columns(
    *,
    tracks: MdcTracks,
    identified: PidResult,
    muon_hits: MucHits,
    charge: np.ndarray,
    truth_index: np.ndarray,
    has_cluster: np.ndarray,
    energy: np.ndarray,
    position: np.ndarray,
    time: np.ndarray,
    shapes: ShapeVariables,
    shape_rows: np.ndarray,
) -> dict[str, np.ndarray]:
    """Build the branch columns of m charged tracks.

    Args:
        tracks: MDC tracks.
        identified: PID result of the tracks.
        muon_hits: MUC response of the tracks.
        charge: charges, shape ``(m,)``.
        truth_index: truth index within the event, shape ``(m,)``.
        has_cluster: tracks with a matched cluster above threshold, shape ``(m,)``.
        energy: cluster energies (used where ``has_cluster``), shape ``(m,)`` GeV.
        position: cluster positions, shape ``(m, 3)`` cm.
        time: cluster times, shape ``(m,)``.
        shapes: shape variables of all showers of the chunk.
        shape_rows: rows of ``shapes`` belonging to the tracks with a cluster, in track order.
    """
    m = charge.shape[0]
    momentum = tracks.momentum
    columns: dict[str, np.ndarray] = {
        "q": charge.astype(np.int32),
        "mdc_p3_px": momentum[:, 0],
        "mdc_p3_py": momentum[:, 1],
        "mdc_p3_pz": momentum[:, 2],
        "vz0": tracks.vz0,
        "vr0": tracks.vr0,
        "pid_prob_type": identified.most_probable.astype(np.int32),
        "mc_idx": truth_index.astype(np.int32),
    }
    for column, name in enumerate(HYPOTHESIS_NAMES):
        columns[f"pid_prob_{name}"] = identified.probabilities[:, column]

    # EMC variables only where a cluster above threshold is matched
    p = np.maximum(row_norm(momentum), EPS)
    matched = {
        "emc_energy": energy[has_cluster],
        "emc_x": position[has_cluster, 0],
        "emc_y": position[has_cluster, 1],
        "emc_z": position[has_cluster, 2],
        "emc_time": time[has_cluster],
        "EoP": energy[has_cluster] / p[has_cluster],
        **_shape_columns(shapes, shape_rows),
    }
    for name, values in matched.items():
        dtype = np.int32 if name in INT_BRANCHES else np.float64
        filled = np.full(m, MISSING, dtype=dtype)
        filled[has_cluster] = values
        columns[name] = filled

    # MUC variables only where layers fired
    hits = muon_hits.has_hits
    columns["muc_dpt"] = np.where(hits, muon_hits.depth_cm, MISSING)
    columns["muc_chisq"] = np.where(hits, muon_hits.chisq, MISSING)
    for name, values in (
        ("muc_numLayer", muon_hits.num_layers),
        ("muc_maxHitsInlater", muon_hits.max_hits_in_layer),
        ("muc_numHits", muon_hits.num_hits),
        ("muc_dof", muon_hits.dof),
    ):
        columns[name] = np.where(hits, values, int(MISSING)).astype(np.int32)
    return columns


def neutral_columns(*, showers: NeutralShowers, shapes: ShapeVariables, shape_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Build the branch columns of neutral showers; MDC, PID, E/p and MUC branches are 9999."""
    k = showers.energy.shape[0]
    columns: dict[str, np.ndarray] = {name: np.full(k, MISSING) for name in FLOAT_BRANCHES}
    columns.update({name: np.full(k, int(MISSING), dtype=np.int32) for name in INT_BRANCHES})
    columns["q"] = np.zeros(k, dtype=np.int32)
    columns["mc_idx"] = showers.truth_index.astype(np.int32)
    columns["emc_energy"] = showers.energy
    columns["emc_x"] = showers.position[:, 0]
    columns["emc_y"] = showers.position[:, 1]
    columns["emc_z"] = showers.position[:, 2]
    columns["emc_time"] = showers.time
    columns.update(_shape_columns(shapes, shape_rows))
    columns["emc_numHits"] = columns["emc_numHits"].astype(np.int32)
    return columns


def _rank_in_event(event: np.ndarray) -> np.ndarray:
    """Return each row's position among the rows of its event, for event-sorted ``event``."""
    return np.arange(event.shape[0]) - np.searchsorted(event, event, side="left")


def to_jagged(
    *,
    charged: dict[str, np.ndarray],
    charged_event: np.ndarray,
    neutral: dict[str, np.ndarray],
    neutral_event: np.ndarray,
    num_charged: np.ndarray,
    num_neutral: np.ndarray,
) -> dict[str, ak.Array]:
    """Interleave charged and neutral rows event by event, charged first, into jagged arrays.

    Args:
        charged: charged-track columns, each of shape ``(m,)``, rows sorted by event.
        charged_event: event index of each charged row, shape ``(m,)``.
        neutral: neutral-shower columns, each of shape ``(k,)``, rows sorted by event.
        neutral_event: event index of each neutral row, shape ``(k,)``.
        num_charged: charged rows per event, shape ``(num_events,)``.
        num_neutral: neutral rows per event, shape ``(num_events,)``.

    Returns:
        One awkward array of shape ``(num_events, var)`` per name of :data:`TRACK_BRANCHES`.
    """
    offsets = np.zeros(num_charged.shape[0] + 1, dtype=np.int64)
    np.cumsum(num_charged + num_neutral, out=offsets[1:])
    charged_slot = offsets[:-1][charged_event] + _rank_in_event(charged_event)
    neutral_slot = offsets[:-1][neutral_event] + num_charged[neutral_event] + _rank_in_event(neutral_event)
    index = ak.index.Index64(offsets)
    output = {}
    for name in TRACK_BRANCHES:
        values = np.empty(int(offsets[-1]), dtype=charged[name].dtype)
        values[charged_slot] = charged[name]
        values[neutral_slot] = neutral[name]
        output[name] = ak.Array(ak.contents.ListOffsetArray(index, ak.contents.NumpyArray(values)))
    return output
