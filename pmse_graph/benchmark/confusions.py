"""The confusions the benchmark reports, chosen from the class table: :func:`confusion_pairs`.

Two kinds of class pairs are reported:

* ``"shared final state"``: two decay trees with the same final state, for example
  J/psi -> pi+ rho-, rho- -> pi0 pi- against the non-resonant J/psi -> pi0 pi+ pi-, or an
  omega -> pi+ pi- pi0 against the same pions without the omega;
* ``"one pi0"``: final states that differ by exactly one pi0 (one pi0 more in class A).

Each pair is reported in both directions as "share of class A's events predicted as class B".
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd

from pmse_graph.errors import DataError

SHARED_FINAL_STATE = "shared final state"
ONE_PI0 = "one pi0"
FINAL_STATE_ARROW = "--->"


def final_state_particles(final_state: str) -> Counter:
    """Count the particles of a TopoAna final-state string such as ``"J/psi ---> pi0 pi+ pi-"``."""
    if FINAL_STATE_ARROW not in final_state:
        raise DataError(f"Invalid final state {final_state!r}: expected '<mother> {FINAL_STATE_ARROW} <particles>'")
    return Counter(final_state.split(FINAL_STATE_ARROW, 1)[1].split())


def confusion_pairs(topology: pd.DataFrame, class_ids: np.ndarray, *, max_pairs: int) -> pd.DataFrame:
    """Choose the class pairs of each confusion kind among ``class_ids``.

    Pairs are ranked by the event count of their smaller class, so the best-measured pairs
    come first, and at most ``max_pairs`` are kept per kind.

    Args:
        topology: the ``topology.csv`` frame (columns ``id``, ``tree``, ``final_state``, ``count``).
        class_ids: decay-tree ids of the classification task.
        max_pairs: pairs kept per kind.

    Returns:
        One row per ordered pair: ``kind``, ``class_a``, ``class_b``, ``tree_a``, ``tree_b``
        and ``min_count`` (each unordered pair appears as A->B and B->A).
    """
    missing = sorted(set(int(i) for i in class_ids) - set(topology["id"].astype(int)))
    if missing:
        raise DataError(f"Classes {missing[:5]} are not in the topology table; pass the table of the evaluated events")
    rows = topology.set_index("id").loc[np.asarray(class_ids, dtype=np.int64)]
    particles = {int(i): final_state_particles(fs) for i, fs in rows["final_state"].items()}
    count = rows["count"].astype(int).to_dict()
    tree = rows["tree"].to_dict()

    # unordered pairs of each kind, A being the class with the extra pi0 for "one pi0"
    found: dict[str, list[tuple[int, int]]] = {SHARED_FINAL_STATE: [], ONE_PI0: []}
    for a, b in combinations(particles, 2):
        if particles[a] == particles[b]:
            found[SHARED_FINAL_STATE].append((a, b))
            continue
        for more, fewer in ((a, b), (b, a)):
            if particles[more] - particles[fewer] == Counter({"pi0": 1}) and not particles[fewer] - particles[more]:
                found[ONE_PI0].append((more, fewer))

    table = []
    for kind, pairs in found.items():
        pairs.sort(key=lambda pair: (-min(count[pair[0]], count[pair[1]]), pair))
        for a, b in pairs[:max_pairs]:
            smaller = min(count[a], count[b])
            table.append({"kind": kind, "class_a": a, "class_b": b, "tree_a": tree[a], "tree_b": tree[b], "min_count": smaller})
            table.append({"kind": kind, "class_a": b, "class_b": a, "tree_a": tree[b], "tree_b": tree[a], "min_count": smaller})
    return pd.DataFrame(table, columns=["kind", "class_a", "class_b", "tree_a", "tree_b", "min_count"])


def confusion_shares(pairs: pd.DataFrame, true_class: np.ndarray, predicted_class: np.ndarray) -> pd.DataFrame:
    """Add ``events_a`` and ``share`` (share of class A's events predicted as B) to ``pairs``.

    ``share`` is NaN when class A has no evaluated events.

    Shapes:
        true_class, predicted_class: (num_events,) decay-tree ids.
    """
    true_class = np.asarray(true_class)
    predicted_class = np.asarray(predicted_class)
    events, shares = [], []
    for a, b in zip(pairs["class_a"], pairs["class_b"]):
        is_a = true_class == a
        events.append(int(is_a.sum()))
        shares.append(float((predicted_class[is_a] == b).mean()) if is_a.any() else float("nan"))
    return pairs.assign(events_a=events, share=shares)
