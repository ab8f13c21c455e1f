"""Write small BESIII-format ntuples of synthetic events whose features depend on their class.

The events are not physical: each class has its own particle count, charge pattern and
momentum direction, so a short pretraining has something to learn and every loss can fall.
The file layout follows docs/ntuple_format.md (tree ``evt``, jagged track branches counted by
``nTracks``, charged tracks first, 9999 where a sub-detector has no information).
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

MISSING = 9999.0
FLOAT_BRANCHES = [
    "mdc_p3_px", "mdc_p3_py", "mdc_p3_pz", "vz0", "vr0", "emc_e3x3", "emc_e5x5", "emc_energy",
    "emc_x", "emc_y", "emc_z", "emc_time", "EoP", "emc_secmom", "emc_latmom", "muc_dpt", "muc_chisq",
]
INT_BRANCHES = ["q", "pid_prob_type", "emc_numHits", "muc_numLayer", "muc_maxHitsInlater", "muc_dof", "muc_numHits"]


def write_generated(path: Path, *, num_events: int, num_classes: int = 4, seed: int = 0, first_event: int = 0) -> Path:
    """Write ``num_events`` synthetic events of ``num_classes`` classes to ``path``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_events)
    num_charged = 1 + labels % 3
    num_neutral = (labels * 2) % 5
    counts = num_charged + num_neutral
    total = int(counts.sum())
    event_of = np.repeat(np.arange(num_events), counts)
    index_in_event = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    charged = index_in_event < num_charged[event_of]
    label = labels[event_of]

    # class-dependent directions and momentum scale
    phi = 0.8 * label + 2.1 * index_in_event + 0.2 * rng.standard_normal(total)
    cos_theta = np.clip(0.5 * np.cos(1.3 * label + index_in_event) + 0.1 * rng.standard_normal(total), -0.9, 0.9)
    sin_theta = np.sqrt(1 - cos_theta**2)
    p = (0.3 + 0.25 * label) * np.exp(0.15 * rng.standard_normal(total))
    px, py, pz = p * sin_theta * np.cos(phi), p * sin_theta * np.sin(phi), p * cos_theta
    radius = 94.0

    values: dict[str, np.ndarray] = {
        "q": np.where(charged, np.where(index_in_event % 2 == 0, 1, -1), 0),
        "mdc_p3_px": np.where(charged, px, MISSING),
        "mdc_p3_py": np.where(charged, py, MISSING),
        "mdc_p3_pz": np.where(charged, pz, MISSING),
        "vz0": np.where(charged, 0.5 * rng.standard_normal(total), MISSING),
        "vr0": np.where(charged, np.abs(0.1 * rng.standard_normal(total)), MISSING),
        "pid_prob_type": np.where(charged, (label + index_in_event) % 5, MISSING),
        "emc_numHits": np.rint(5 + 3 * label + rng.integers(0, 3, total)),
        "emc_energy": 0.6 * p,
        "emc_x": radius * sin_theta * np.cos(phi),
        "emc_y": radius * sin_theta * np.sin(phi),
        "emc_z": radius * cos_theta,
        "emc_time": 4.0 + rng.random(total),
        "EoP": np.where(charged, 0.6, MISSING),
        "emc_secmom": 10.0 + label + rng.random(total),
        "emc_latmom": 0.3 + 0.05 * label + 0.01 * rng.random(total),
    }
    values["emc_e3x3"] = 0.8 * values["emc_energy"]
    values["emc_e5x5"] = 0.95 * values["emc_energy"]
    for name in ("muc_dpt", "muc_chisq", "muc_numLayer", "muc_maxHitsInlater", "muc_dof", "muc_numHits"):
        values[name] = np.full(total, MISSING)

    fields = {}
    for name in FLOAT_BRANCHES + INT_BRANCHES:
        dtype = np.int32 if name in INT_BRANCHES else np.float32
        fields[name] = ak.unflatten(values[name].astype(dtype), counts)
    branches = {
        "run": np.full(num_events, 1, dtype=np.int32),
        "event": np.arange(first_event, first_event + num_events, dtype=np.int64),
        "nCharged": num_charged.astype(np.int32),
        "nNeutral": num_neutral.astype(np.int32),
        "nGoodCharged": num_charged.astype(np.int32),
        "nGoodNeutral": num_neutral.astype(np.int32),
        "topo_tree_id": labels.astype(np.int32),
        "topo_fs_id": (labels // 2).astype(np.int32),
        "tracks": ak.zip(fields),
    }
    with uproot.recreate(path) as handle:
        handle.mktree(
            "evt",
            {name: value.type if isinstance(value, ak.Array) else value.dtype for name, value in branches.items()},
            counter_name=lambda counted: "nTracks",
            field_name=lambda outer, inner: inner,
        )
        handle["evt"].extend(branches)
    return path
