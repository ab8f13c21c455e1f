"""TopoAna-compatible decay-tree and final-state strings of MC-truth events.

A truth record is a list of PDG codes with mother indices (-1, or the particle's
own index, for a particle without mother). It is turned into TopoAna's canonical
form as follows, matching TopoAna's ``sortPs``, ``getDcyTr`` and ``getDcyIFSts``:

1. Photons are relabelled. PDG -22 (PHOTOS radiation) is ``gammaf``. A photon
   with at least two sisters that are not PDG 22, one of them e, mu, pi, K or p,
   becomes ``gammaF``. Other photons stay ``gamma``.
2. ``pi0 -> gamma gamma`` is dropped, so such a pi0 is a final-state particle.
3. Particles are laid out level by level from the top of the tree. Within one
   decay, daughters sort by ``|PDG code|`` ascending, then by charge (positive
   first), then by PDG code (positive first), with every photon last. Identical
   sisters that decay sort by their decays: fewer daughters first, then by the
   daughters in the same order. Identical sisters whose decays are also identical
   are ordered by their granddaughters and deeper, with TopoAna's rule.
4. The decay tree is the list of branches ``mother --> daughters``, in the order
   of their mothers in this layout. The final state is the root followed by all
   particles without daughters, sorted as in step 3.

TopoAna sorts with a pairwise exchange sort, which is not stable, so the order
among identical particles before step 3's tie-breaks can matter. The helpers
here reproduce that sort literally on the short lists of one decay.

:func:`label_events` labels many events at once. It hashes each event's
``(PDG code, mother)`` rows with numpy, labels each distinct record once and
broadcasts the strings back, so the Python work grows with the number of
distinct records, not events.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import awkward as ak
import numpy as np

from pmse_graph.errors import DataError
from pmse_graph.topology.names import (
    E_MINUS,
    GENERAL_FSR_PHOTON,
    PHOTON,
    PI0,
    QUARK_CODES,
    ParticleNames,
)

logger = logging.getLogger(__name__)

BRANCH_SEPARATOR = "; "
"""Separator between the branches of a decay tree written on one line."""
BRANCH_ARROW = " --> "
FINAL_STATE_ARROW = " ---> "

# Sisters that make a plain photon a gammaF (e, mu, pi, K, p by |PDG code|).
_CHARGED_STABLE_CODES = frozenset((11, 13, 211, 321, 2212))

ItemT = TypeVar("ItemT")


class RecordError(DataError):
    """An event whose truth record cannot be labelled.

    Attributes:
        event: index of the event in the labelled batch.
        detail: what is wrong with its record.
    """

    def __init__(self, detail: str, *, event: int) -> None:
        super().__init__(f"Event {event}: {detail}")
        self.event = event
        self.detail = detail


@dataclass
class _Node:
    """A particle of the sorted tree: its TopoAna code, its record index and its sorted daughters."""

    code: int
    index: int
    daughters: list[_Node]


def _exchange_sort(items: list[ItemT], comes_after: Callable[[ItemT, ItemT], bool]) -> None:
    """Sort ``items`` in place with TopoAna's pairwise exchange sort (not stable)."""
    for i in range(len(items) - 1):
        for j in range(i + 1, len(items)):
            if comes_after(items[i], items[j]):
                items[i], items[j] = items[j], items[i]


class _Ordering:
    """TopoAna's particle order and decay order for one particle table."""

    def __init__(self, names: ParticleNames) -> None:
        self.names = names
        self._keys: dict[int, tuple[int, int, int, int]] = {}

    def key(self, code: int) -> tuple[int, int, int, int]:
        """Return the sort key: photon last, ``|code|`` ascending, charge and code descending."""
        key = self._keys.get(code)
        if key is None:
            is_photon = int(abs(code) == PHOTON)
            key = (is_photon, abs(code), -self.names.three_charge(code), -code)
            self._keys[code] = key
        return key

    def particle_after(self, a: _Node, b: _Node) -> bool:
        return self.key(a.code) > self.key(b.code)

    def decay_after(self, a: Sequence[int], b: Sequence[int]) -> bool:
        """Return True if decay ``a`` sorts after decay ``b`` (more daughters, or later daughters)."""
        if len(a) != len(b):
            return len(a) > len(b)
        for code_a, code_b in zip(a, b):
            if code_a != code_b:
                return self.key(code_a) > self.key(code_b)
        return False


def _daughter_codes(node: _Node) -> list[int]:
    return [daughter.code for daughter in node.daughters]


def _relabel_photon(index: int, sisters: Sequence[int], pdg: Sequence[int]) -> int:
    """Return the TopoAna code of a PDG 22 photon given the indices of its sisters."""
    non_photon_sisters = 0
    has_charged_stable_sister = False
    for sister in sisters:
        if sister == index:
            continue
        if pdg[sister] != PHOTON:
            non_photon_sisters += 1
        if abs(pdg[sister]) in _CHARGED_STABLE_CODES:
            has_charged_stable_sister = True
    if non_photon_sisters >= 2 and has_charged_stable_sister:
        return GENERAL_FSR_PHOTON
    return PHOTON


def build_canonical_tree(pdg: Sequence[int], mother: Sequence[int], *, ordering: _Ordering) -> list[_Node]:
    """Build the sorted decay tree of one event and return its root particles.

    Args:
        pdg: PDG code of each particle.
        mother: index of each particle's mother in the same event; -1 or the
            particle's own index marks a particle without mother.
        ordering: particle order of the table in use.

    Raises:
        DataError: a mother index lies outside the event.
    """
    count = len(pdg)
    children: list[list[int]] = [[] for _ in range(count)]
    roots: list[int] = []
    for index in range(count):
        parent = int(mother[index])
        if parent == -1 or parent == index:
            roots.append(index)
        elif 0 <= parent < count:
            children[parent].append(index)
        else:
            raise DataError(f"Mother index {parent} of particle {index} lies outside the event's {count} particles")

    # steps 1-2: TopoAna codes of each decay, with pi0 -> gamma gamma removed
    nodes = [_Node(int(code), index, []) for index, code in enumerate(pdg)]
    decays: list[list[_Node] | None] = [None] * count
    for parent in range(count):
        if not children[parent]:
            continue
        daughters = []
        for index in children[parent]:
            code = nodes[index].code
            if code == PHOTON:
                code = _relabel_photon(index, children[parent], pdg)
            nodes[index].code = code
            daughters.append(nodes[index])
        codes = [daughter.code for daughter in daughters]
        if nodes[parent].code == PI0 and codes == [PHOTON, PHOTON]:
            continue
        decays[parent] = daughters

    # step 3: lay out level by level; identical sisters exchange their decays
    # NOTE: a photon without mother keeps the name gamma, where TopoAna prints an ISR
    # photon (gammaI); J/psi truth records have the J/psi as their only root.
    root_nodes = [nodes[index] for index in roots]
    _exchange_sort(root_nodes, ordering.particle_after)
    level = [root_nodes]
    while level:
        next_level: list[list[_Node]] = []
        for sisters in level:
            for group in _identical_runs(sisters):
                with_decay = [node for node in group if decays[node.index] is not None]
                group_decays = [decays[node.index] for node in with_decay]
                for daughters in group_decays:
                    _exchange_sort(daughters, ordering.particle_after)
                _exchange_sort(group_decays, lambda a, b: ordering.decay_after([n.code for n in a], [n.code for n in b]))
                for node, daughters in zip(with_decay, group_decays):
                    node.daughters = daughters
                    next_level.append(daughters)
        level = next_level

    _order_identical_subtrees(root_nodes, ordering=ordering)
    return root_nodes


def _identical_runs(sisters: list[_Node]) -> list[list[_Node]]:
    """Split a sorted list of sisters into runs of equal codes."""
    runs: list[list[_Node]] = []
    for node in sisters:
        if runs and runs[-1][0].code == node.code:
            runs[-1].append(node)
        else:
            runs.append([node])
    return runs


def _order_identical_subtrees(roots: list[_Node], *, ordering: _Ordering) -> None:
    """Swap identical sisters with identical decays whose deeper decays sort the other way.

    Follows TopoAna's ``recurHighHierExchOrd``: the two subtrees are compared level
    by level, and at the first level where they differ, they swap if any pair of
    corresponding decays at that level sorts the other way.
    """
    queue = deque(roots)
    while queue:
        node = queue.popleft()
        sisters = node.daughters
        for i in range(len(sisters) - 1):
            for j in range(i + 1, len(sisters)):
                first, second = sisters[i], sisters[j]
                if first.code != second.code or not first.daughters:
                    continue
                if _daughter_codes(first) != _daughter_codes(second):
                    continue
                if _deeper_decays_after(first, second, ordering=ordering):
                    sisters[i], sisters[j] = second, first
        queue.extend(sisters)


def _deeper_decays_after(first: _Node, second: _Node, *, ordering: _Ordering) -> bool:
    front_first, front_second = first.daughters, second.daughters
    while True:
        decays_first = [_daughter_codes(node) for node in front_first]
        decays_second = [_daughter_codes(node) for node in front_second]
        next_first = [daughter for node in front_first for daughter in node.daughters]
        next_second = [daughter for node in front_second for daughter in node.daughters]
        if not next_first or not next_second:
            return False
        if decays_first != decays_second:
            return any(ordering.decay_after(a, b) for a, b in zip(decays_first, decays_second))
        front_first, front_second = next_first, next_second


def _head_codes(roots: list[_Node]) -> list[int]:
    """Return the codes printed before the first arrow: the root, or ``e+ e-`` for several roots."""
    if len(roots) == 1:
        return [roots[0].code]
    return [-E_MINUS, E_MINUS]


def _mother_codes(code: int) -> list[int]:
    if abs(code) in QUARK_CODES:
        return [abs(code), -abs(code)]
    return [code]


def tree_branches(roots: list[_Node]) -> list[tuple[list[int], list[int]]]:
    """Return the branches ``(mother codes, daughter codes)`` of a sorted tree, top first."""
    branches: list[tuple[list[int], list[int]]] = []
    if len(roots) > 1:
        branches.append((_head_codes(roots), [root.code for root in roots]))
    queue = deque(roots)
    while queue:
        node = queue.popleft()
        if node.daughters:
            branches.append((_mother_codes(node.code), _daughter_codes(node)))
            queue.extend(node.daughters)
    return branches


def final_state_codes(roots: list[_Node], *, ordering: _Ordering) -> tuple[list[int], list[int]]:
    """Return the head codes and the sorted final-state codes of a sorted tree."""
    finals: list[int] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.daughters:
            stack.extend(node.daughters)
        elif abs(node.code) not in QUARK_CODES:
            finals.append(node.code)
    finals.sort(key=ordering.key)
    return _head_codes(roots), finals


class _Labeller:
    """Strings of one record at a time, with one particle table."""

    def __init__(self, names: ParticleNames | None) -> None:
        self.names = names if names is not None else ParticleNames.default()
        self.ordering = _Ordering(self.names)

    def _join(self, codes: Sequence[int]) -> str:
        return " ".join(self.names.name(code) for code in codes)

    def label(self, pdg: Sequence[int], mother: Sequence[int]) -> tuple[str, str]:
        roots = build_canonical_tree(pdg, mother, ordering=self.ordering)
        tree = BRANCH_SEPARATOR.join(
            self._join(mothers) + BRANCH_ARROW + self._join(daughters) for mothers, daughters in tree_branches(roots)
        )
        head, finals = final_state_codes(roots, ordering=self.ordering)
        return tree, self._join(head) + FINAL_STATE_ARROW + self._join(finals)


def decay_tree_string(pdg: Sequence[int], mother: Sequence[int], *, names: ParticleNames | None = None) -> str:
    """Return the TopoAna decay tree of one event, branches joined by ``"; "``.

    Args:
        pdg: PDG code of each particle (-22 for PHOTOS photons).
        mother: mother index of each particle, -1 for particles without mother.
        names: particle table; the default is :meth:`ParticleNames.default`.

    Example: ``"J/psi --> pi0 rho0; rho0 --> pi+ pi-"``.
    """
    return _Labeller(names).label(pdg, mother)[0]


def final_state_string(pdg: Sequence[int], mother: Sequence[int], *, names: ParticleNames | None = None) -> str:
    """Return the TopoAna final state of one event, for example ``"J/psi ---> pi0 pi+ pi-"``.

    Args:
        pdg: PDG code of each particle (-22 for PHOTOS photons).
        mother: mother index of each particle, -1 for particles without mother.
        names: particle table; the default is :meth:`ParticleNames.default`.
    """
    return _Labeller(names).label(pdg, mother)[1]


@dataclass
class TopologyLabels:
    """Decay-tree and final-state strings of many events.

    Attributes:
        tree: decay tree of each event, shape ``(num_events,)`` object array of str.
        final_state: final state of each event, shape ``(num_events,)`` object array of str.
        num_distinct_records: distinct ``(PDG code, mother)`` records among the events,
            that is, how many records were labelled one by one.
    """

    tree: np.ndarray
    final_state: np.ndarray
    num_distinct_records: int


_HASH_MULTIPLIERS = (
    (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)),
    (np.uint64(0xD6E8FEB86659FD93), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0x94D049BB133111EB)),
)


def _record_hashes(pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Return two 64-bit hashes per event of its ``(position, PDG code, mother)`` rows, shape ``(num_events, 2)``."""
    lengths = np.diff(offsets)
    starts = offsets[:-1]
    position = (np.arange(pdg.shape[0], dtype=np.int64) - np.repeat(starts, lengths)).astype(np.uint64)
    code = pdg.astype(np.int64).astype(np.uint64)
    parent = (mother.astype(np.int64) + 1).astype(np.uint64)
    hashes = np.zeros((lengths.shape[0], 2), dtype=np.uint64)
    nonempty = lengths > 0
    with np.errstate(over="ignore"):
        for column, (a, b, c) in enumerate(_HASH_MULTIPLIERS):
            row = (code * a) ^ (parent * b) ^ ((position + np.uint64(1)) * c)
            row ^= row >> np.uint64(31)
            row *= b
            row ^= row >> np.uint64(29)
            if row.shape[0]:
                sums = np.add.reduceat(row, starts[nonempty]) if nonempty.any() else np.zeros(0, np.uint64)
                hashes[nonempty, column] = sums
            hashes[:, column] ^= lengths.astype(np.uint64) * c
    return hashes


def _same_record_as(representative: np.ndarray, pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Return, per event, whether its rows equal those of its representative event."""
    lengths = np.diff(offsets)
    same = lengths == lengths[representative]
    starts = offsets[:-1]
    position = np.arange(pdg.shape[0], dtype=np.int64) - np.repeat(starts, lengths)
    event = np.repeat(np.arange(lengths.shape[0]), lengths)
    comparable = same[event]
    mirror = offsets[representative[event[comparable]]] + position[comparable]
    differs = (pdg[comparable] != pdg[mirror]) | (mother[comparable] != mother[mirror])
    same[np.unique(event[comparable][differs])] = False
    return same


def label_flat(
    pdg: np.ndarray, mother: np.ndarray, offsets: np.ndarray, *, names: ParticleNames | None = None
) -> TopologyLabels:
    """Label events given as flat particle arrays with per-event offsets.

    Args:
        pdg: PDG codes of all particles, shape ``(num_particles,)``.
        mother: mother index within the event, -1 for none, shape ``(num_particles,)``.
        offsets: start of each event, shape ``(num_events + 1,)``, as in
            :class:`pmse_graph.simulation.truth.TruthChunk`.
        names: particle table; the default is :meth:`ParticleNames.default`.

    Raises:
        DataError: an event has no particles or a mother index outside its event.
    """
    pdg = np.asarray(pdg)
    mother = np.asarray(mother)
    offsets = np.asarray(offsets, dtype=np.int64)
    num_events = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    if num_events > 0 and (lengths <= 0).any():
        empty = int(np.flatnonzero(lengths <= 0)[0])
        raise RecordError("no particles, so no decay tree", event=empty)

    # group identical records by hash, then confirm each member against its representative
    hashes = _record_hashes(pdg, mother, offsets)
    _, first_event, inverse = np.unique(hashes, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    representative = first_event[inverse]
    confirmed = _same_record_as(representative, pdg, mother, offsets)

    labeller = _Labeller(names)
    trees = np.empty(first_event.shape[0], dtype=object)
    finals = np.empty(first_event.shape[0], dtype=object)
    for slot, event in enumerate(first_event):
        start, stop = offsets[event], offsets[event + 1]
        try:
            trees[slot], finals[slot] = labeller.label(pdg[start:stop].tolist(), mother[start:stop].tolist())
        except DataError as exc:
            raise RecordError(str(exc), event=int(event)) from exc
    tree = trees[inverse]
    final_state = finals[inverse]

    # hash collisions (never seen) get labelled one by one
    for event in np.flatnonzero(~confirmed):
        start, stop = offsets[event], offsets[event + 1]
        tree[event], final_state[event] = labeller.label(pdg[start:stop].tolist(), mother[start:stop].tolist())
    if not confirmed.all():
        logger.debug("%d events shared a record hash with a different record", int((~confirmed).sum()))

    return TopologyLabels(tree=tree, final_state=final_state, num_distinct_records=int(first_event.shape[0] + (~confirmed).sum()))


def label_events(pid: ak.Array, midx: ak.Array, *, names: ParticleNames | None = None) -> TopologyLabels:
    """Label events given as jagged PDG-code and mother-index arrays.

    Args:
        pid: PDG codes, one list per event (for example the ``Pid`` branch).
        midx: mother indices within each event, -1 for the root (``Midx``).
        names: particle table; the default is :meth:`ParticleNames.default`.

    Returns:
        The decay tree and final state of every event.

    Raises:
        DataError: the two arrays disagree in length for some event, an event is
            empty, or a mother index points outside its event.
    """
    pid = ak.Array(pid)
    midx = ak.Array(midx)
    counts = ak.to_numpy(ak.num(pid, axis=1))
    mother_counts = ak.to_numpy(ak.num(midx, axis=1))
    if counts.shape != mother_counts.shape or (counts != mother_counts).any():
        if counts.shape != mother_counts.shape:
            raise DataError(f"Expected as many mother-index lists as PDG-code lists (got {mother_counts.shape[0]} and {counts.shape[0]})")
        event = int(np.flatnonzero(counts != mother_counts)[0])
        raise RecordError(
            f"{counts[event]} PDG codes but {mother_counts[event]} mother indices; both need one entry per particle", event=event
        )
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat_pdg = ak.to_numpy(ak.flatten(pid, axis=1)).astype(np.int64)
    flat_mother = ak.to_numpy(ak.flatten(midx, axis=1)).astype(np.int64)
    return label_flat(flat_pdg, flat_mother, offsets, names=names)
