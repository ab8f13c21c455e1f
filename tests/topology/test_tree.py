"""Tests of the TopoAna decay-tree and final-state strings."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from pmse_graph.errors import DataError
from pmse_graph.topology.names import ParticleNames
from pmse_graph.topology.tree import (
    RecordError,
    decay_tree_string,
    final_state_string,
    label_events,
    label_flat,
)

JPSI, PI0, PIP, PIM, GAMMA = 443, 111, 211, -211, 22


def record(*rows: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Split ``(pdg, mother)`` rows into the two lists a truth record holds."""
    return [pdg for pdg, _ in rows], [mother for _, mother in rows]


def shuffled(pdg: list[int], mother: list[int], seed: int) -> tuple[list[int], list[int]]:
    """Permute the particles of a record, mothers still before daughters, keeping the tree."""
    rng = np.random.default_rng(seed)
    order = [0]
    pending = list(range(1, len(pdg)))
    while pending:
        ready = [index for index in pending if mother[index] in order]
        pick = ready[rng.integers(len(ready))]
        order.append(pick)
        pending.remove(pick)
    new_position = {old: new for new, old in enumerate(order)}
    return [pdg[old] for old in order], [-1 if mother[old] == -1 else new_position[mother[old]] for old in order]


def test_daughters_sort_by_abs_code_charge_photons_last():
    pdg, mother = record((JPSI, -1), (GAMMA, 0), (-2112, 0), (11, 0), (2112, 0), (-11, 0), (PIM, 0), (PI0, 0), (PIP, 0))
    assert decay_tree_string(pdg, mother) == "J/psi --> e+ e- pi0 pi+ pi- n0 anti-n0 gammaF"
    pdg[1] = -22  # a PHOTOS photon
    assert decay_tree_string(pdg, mother) == "J/psi --> e+ e- pi0 pi+ pi- n0 anti-n0 gammaf"


def test_gamma_before_gammaf():
    pdg, mother = record((JPSI, -1), (-22, 0), (GAMMA, 0), (PI0, 0))
    assert decay_tree_string(pdg, mother) == "J/psi --> pi0 gamma gammaf"


def test_pi0_to_two_photons_dropped():
    pdg, mother = record((JPSI, -1), (PIP, 0), (PIM, 0), (PI0, 0), (GAMMA, 3), (GAMMA, 3))
    assert decay_tree_string(pdg, mother) == "J/psi --> pi0 pi+ pi-"
    assert final_state_string(pdg, mother) == "J/psi ---> pi0 pi+ pi-"


def test_pi0_dalitz_decay_kept():
    pdg, mother = record((JPSI, -1), (PIP, 0), (PIM, 0), (PI0, 0), (11, 3), (-11, 3), (GAMMA, 3))
    assert decay_tree_string(pdg, mother) == "J/psi --> pi0 pi+ pi-; pi0 --> e+ e- gammaF"
    assert final_state_string(pdg, mother) == "J/psi ---> e+ e- pi+ pi- gammaF"


def test_radiative_two_body_photon_stays_gamma():
    # one non-photon sister is not enough for gammaF
    pdg, mother = record((JPSI, -1), (-213, 0), (213, 0), (PIP, 2), (GAMMA, 2), (PIM, 1), (PI0, 1))
    assert decay_tree_string(pdg, mother) == "J/psi --> rho+ rho-; rho+ --> pi+ gamma; rho- --> pi0 pi-"


def test_branches_top_down_then_in_mother_order():
    # rho0 a_20 at level 1; a_20 -> pi+ rho-; rho- decays at level 3, after rho0's level-2 branch
    pdg, mother = record((JPSI, -1), (115, 0), (113, 0), (-213, 1), (PIP, 1), (PIP, 2), (PIM, 2), (PIM, 3), (PI0, 3))
    expected = "J/psi --> rho0 a_20; rho0 --> pi+ pi-; a_20 --> pi+ rho-; rho- --> pi0 pi-"
    assert decay_tree_string(pdg, mother) == expected


def test_level_order_not_depth_first():
    # K*+ -> K0 pi+ with K0 -> K_S0 -> pi pi: the K_S0 branch follows the phi branch of level 1
    pdg, mother = record(
        (JPSI, -1), (323, 0), (-321, 0), (311, 1), (PIP, 1), (310, 3), (PIP, 5), (PIM, 5), (333, 0), (321, 8), (-321, 8)
    )
    tree = decay_tree_string(pdg, mother)
    assert tree == "J/psi --> K- K*+ phi; K*+ --> pi+ K0; phi --> K+ K-; K0 --> K_S0; K_S0 --> pi+ pi-"


def test_identical_sisters_order_by_decay():
    # omega -> pi0 gamma (two daughters) sorts before omega -> pi0 pi+ pi- (three)
    pdg, mother = record((JPSI, -1), (223, 0), (223, 0), (PI0, 1), (PIP, 1), (PIM, 1), (PI0, 2), (GAMMA, 2))
    expected = "J/psi --> omega omega; omega --> pi0 gamma; omega --> pi0 pi+ pi-"
    assert decay_tree_string(pdg, mother) == expected
    assert decay_tree_string(*shuffled(pdg, mother, seed=1)) == expected


def test_identical_sisters_order_by_granddaughters():
    # K0 -> K_S0 twice; the K_S0 -> pi0 pi0 subtree comes before K_S0 -> pi+ pi-
    pdg, mother = record(
        (JPSI, -1), (311, 0), (311, 0), (PI0, 0), (310, 1), (310, 2), (PIP, 4), (PIM, 4), (PI0, 5), (PI0, 5)
    )
    tree = decay_tree_string(pdg, mother)
    assert tree == "J/psi --> pi0 K0 K0; K0 --> K_S0; K0 --> K_S0; K_S0 --> pi0 pi0; K_S0 --> pi+ pi-"


@pytest.mark.parametrize("seed", range(5))
def test_particle_order_does_not_change_labels(seed: int):
    pdg, mother = record(
        (JPSI, -1), (113, 0), (113, 0), (223, 0), (PIP, 1), (PIM, 1), (PIP, 2), (PIM, 2), (PI0, 3), (PIP, 3), (PIM, 3),
        (GAMMA, 8), (GAMMA, 8),
    )
    expected = decay_tree_string(pdg, mother), final_state_string(pdg, mother)
    other = shuffled(pdg, mother, seed)
    assert (decay_tree_string(*other), final_state_string(*other)) == expected


def test_several_roots_get_e_plus_e_minus_head():
    pdg, mother = record((443, -1), (GAMMA, -1), (PIP, 0), (PIM, 0))
    assert decay_tree_string(pdg, mother) == "e+ e- --> J/psi gamma; J/psi --> pi+ pi-"
    assert final_state_string(pdg, mother) == "e+ e- ---> pi+ pi- gamma"


def test_pid_table_names(topoana_dir):
    names = ParticleNames.from_pid_table(topoana_dir / "pidtable_BESIII.dat")
    pdg, mother = record((JPSI, -1), (2212, 0), (-2212, 0))
    assert decay_tree_string(pdg, mother, names=names) == "J/psi --> p+ anti-p-"


def test_label_events_matches_single_event_strings(truth_arrays):
    sample = truth_arrays[:1500]
    labels = label_events(sample.Pid, sample.Midx)
    assert labels.tree.shape == (1500,)
    assert labels.num_distinct_records < 1500
    for index in range(0, 1500, 7):
        pdg, mother = sample.Pid[index].to_list(), sample.Midx[index].to_list()
        assert labels.tree[index] == decay_tree_string(pdg, mother)
        assert labels.final_state[index] == final_state_string(pdg, mother)


def test_label_flat_groups_identical_records():
    pdg = np.array([JPSI, 13, -13, JPSI, PIP, PIM, PI0, JPSI, 13, -13, JPSI, -13, 13])
    mother = np.array([-1, 0, 0, -1, 0, 0, 0, -1, 0, 0, -1, 0, 0])
    offsets = np.array([0, 3, 7, 10, 13])
    labels = label_flat(pdg, mother, offsets)
    assert list(labels.tree) == ["J/psi --> mu+ mu-", "J/psi --> pi0 pi+ pi-", "J/psi --> mu+ mu-", "J/psi --> mu+ mu-"]
    # events 0 and 2 are the same record; event 3 lists the muons the other way round
    assert labels.num_distinct_records == 3


def test_mother_outside_event_names_event():
    pid = ak.Array([[JPSI, PIP, PIM], [JPSI, PIP, PIM]])
    midx = ak.Array([[-1, 0, 0], [-1, 0, 7]])
    with pytest.raises(RecordError, match=r"Event 1: Mother index 7 of particle 2") as info:
        label_events(pid, midx)
    assert info.value.event == 1


def test_empty_event_rejected():
    with pytest.raises(RecordError, match="Event 1: no particles"):
        label_events(ak.Array([[JPSI], []]), ak.Array([[-1], []]))


def test_length_mismatch_rejected():
    with pytest.raises(DataError, match="Event 0: 3 PDG codes but 2 mother indices"):
        label_events(ak.Array([[JPSI, PIP, PIM]]), ak.Array([[-1, 0]]))
