"""Write small BESIII-format ntuples from hand-made events, for the data-layer and CLI tests."""

from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

MISSING = 9999.0

INT_BRANCHES = {"q", "pid_prob_type", "emc_numHits", "muc_numLayer", "muc_maxHitsInlater", "muc_dof", "muc_numHits"}

TRACK_BRANCHES = [
    "q", "mdc_p3_px", "mdc_p3_py", "mdc_p3_pz", "vz0", "vr0", "pid_prob_type",
    "emc_numHits", "emc_e3x3", "emc_e5x5", "emc_energy", "emc_x", "emc_y", "emc_z", "emc_time", "EoP",
    "emc_secmom", "emc_latmom", "muc_dpt", "muc_numLayer", "muc_maxHitsInlater", "muc_chisq", "muc_dof", "muc_numHits",
]


def charged_track(px: float = 0.3, py: float = 0.2, pz: float = 0.4, *, q: int = 1, **overrides) -> dict:
    """A charged pion-like track with a matched shower and no MUC hits."""
    p = max(math.sqrt(px * px + py * py + pz * pz), 1e-3)
    radius = 94.0  # cm, a barrel shower position along the momentum
    track = {
        "q": q, "mdc_p3_px": px, "mdc_p3_py": py, "mdc_p3_pz": pz, "vz0": 0.5, "vr0": 0.1, "pid_prob_type": 2,
        "emc_numHits": 9, "emc_e3x3": 0.18, "emc_e5x5": 0.2, "emc_energy": 0.21,
        "emc_x": radius * px / p, "emc_y": radius * py / p, "emc_z": radius * pz / p, "emc_time": 5.0,
        "EoP": 0.21 / p, "emc_secmom": 12.0, "emc_latmom": 0.4,
        "muc_dpt": MISSING, "muc_numLayer": MISSING, "muc_maxHitsInlater": MISSING, "muc_chisq": MISSING,
        "muc_dof": MISSING, "muc_numHits": MISSING,
    }
    track.update(overrides)
    return track


def photon(x: float = 0.0, y: float = 80.0, z: float = 20.0, *, energy: float = 0.3, **overrides) -> dict:
    """A neutral shower: no MDC, PID or MUC information."""
    shower = {name: MISSING for name in TRACK_BRANCHES}
    shower.update({
        "q": 0, "emc_numHits": 12, "emc_e3x3": 0.8 * energy, "emc_e5x5": 0.95 * energy, "emc_energy": energy,
        "emc_x": x, "emc_y": y, "emc_z": z, "emc_time": 4.0, "emc_secmom": 8.0, "emc_latmom": 0.3,
    })
    shower.update(overrides)
    return shower


def write_besiii(path: Path, events: list[list[dict]], *, float_dtype=np.float32, tree: str = "evt",
                 drop_branches: tuple[str, ...] = (), first_event: int = 0, run: int = 1,
                 event_branches: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``events`` (lists of track dicts, charged first) as a BESIII-format ntuple.

    ``event_branches`` replaces per-event branches (``nCharged``, ``topo_tree_id``, ``event``, ...).
    """
    num = len(events)
    fields = {}
    for name in TRACK_BRANCHES:
        if name in drop_branches:
            continue
        dtype = np.int32 if name in INT_BRANCHES else float_dtype
        flat = np.array([track[name] for event in events for track in event], dtype=dtype)
        fields[name] = ak.unflatten(flat, np.array([len(event) for event in events], dtype=np.int64))
    charged = np.array([sum(track["q"] != 0 for track in event) for event in events], dtype=np.int32)
    sizes = np.array([len(event) for event in events], dtype=np.int32)
    branches = {
        "run": np.full(num, run, dtype=np.int32),
        "event": np.arange(first_event, first_event + num, dtype=np.int64),
        "nCharged": charged, "nNeutral": sizes - charged,
        "nGoodCharged": charged, "nGoodNeutral": sizes - charged,
        "topo_tree_id": np.arange(num, dtype=np.int32) % 3, "topo_fs_id": np.arange(num, dtype=np.int32) % 2,
        "tracks": ak.zip(fields) if fields else None,
    }
    branches.update(event_branches or {})
    branches = {name: value for name, value in branches.items() if name not in drop_branches and value is not None}
    with uproot.recreate(path) as handle:
        handle.mktree(tree, {name: value.type if isinstance(value, ak.Array) else value.dtype for name, value in branches.items()},
                      counter_name=lambda counted: "nTracks", field_name=lambda outer, inner: inner)
        if num:
            handle[tree].extend(branches)
    return path


def three_events() -> list[list[dict]]:
    """Two charged tracks and a photon; one charged track; two tracks and two photons."""
    return [
        [charged_track(0.3, 0.2, 0.4), charged_track(-0.3, -0.1, -0.2, q=-1), photon()],
        [charged_track(0.5, 0.0, 0.1)],
        [charged_track(0.1, 0.6, 0.0), charged_track(0.0, -0.6, 0.3, q=-1), photon(50.0, 60.0, -10.0), photon(-70.0, 0.0, 40.0, energy=0.05)],
    ]
