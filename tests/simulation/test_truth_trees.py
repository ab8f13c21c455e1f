"""Tests for the --truth-trees mode: ROOT round trip, string removal, errors, real BESIII truth."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from pmse_graph.errors import DataError
from pmse_graph.simulation.decay_model import DecayModel
from pmse_graph.simulation.truth_trees import read_truth_templates

TREES = [
    ([443, 211, -211, 111, 22, 22], [-1, 0, 0, 0, 3, 3]),
    ([443, -11, 11], [-1, 0, 0]),
    ([443, 223, 111, 211, -211, 111, 22, 22, 22, 22], [-1, 0, 0, 1, 1, 1, 2, 2, 5, 5]),
]


def write_truth(path, pdg_events, mother_events, *, pid="Pid", mother="Midx", tree="evt"):
    with uproot.recreate(path) as handle:
        handle[tree] = {pid: ak.Array(pdg_events), mother: ak.Array(mother_events)}
    return path


def test_round_trip(tmp_path):
    order = [0, 1, 0, 2, 1, 0]
    path = write_truth(tmp_path / "truth.root", [TREES[i][0] for i in order], [TREES[i][1] for i in order])
    templates, event_template, _ = read_truth_templates(path)
    assert len(templates) == 3
    np.testing.assert_array_equal(event_template, [0, 1, 0, 2, 1, 0])
    for template, (pdg, mother) in zip(templates, TREES):
        np.testing.assert_array_equal(template.pdg, pdg)
        np.testing.assert_array_equal(template.mother, mother)
    assert templates[2].model[1] == "PHSP"  # the omega decays
    assert templates[2].model[3] == ""
    assert templates[2].mass[1] == pytest.approx(0.7827, abs=0.001)


def test_sampling_reproduces_class_mix(tmp_path):
    order = [0] * 30 + [1] * 10
    path = write_truth(tmp_path / "truth.root", [TREES[i][0] for i in order], [TREES[i][1] for i in order])
    model = DecayModel.from_truth_trees(path)
    ids, catalogue = model.sample(40_000, np.random.default_rng(0))
    assert len(catalogue) == 2
    assert np.mean(ids == 0) == pytest.approx(0.75, abs=0.015)


def test_custom_branch_names(tmp_path):
    path = write_truth(tmp_path / "t.root", [TREES[1][0]], [TREES[1][1]], pid="pdg", mother="mom", tree="mc")
    model = DecayModel.from_truth_trees(path, tree="mc", pid="pdg", mother="mom")
    assert len(model.catalogue) == 1


def test_string_entries_removed(tmp_path):
    # J/psi -> string(92) -> pi+ pi- pi0, pi0 -> gamma gamma: the pions attach to the J/psi
    pdg = [443, 92, 211, -211, 111, 22, 22]
    mother = [-1, 0, 1, 1, 1, 4, 4]
    templates, _, _ = read_truth_templates(write_truth(tmp_path / "s.root", [pdg], [mother]))
    np.testing.assert_array_equal(templates[0].pdg, [443, 211, -211, 111, 22, 22])
    np.testing.assert_array_equal(templates[0].mother, [-1, 0, 0, 0, 3, 3])


def test_missing_branch_lists_branches(tmp_path):
    path = write_truth(tmp_path / "t.root", [TREES[1][0]], [TREES[1][1]])
    with pytest.raises(DataError, match=r"branch 'Mother' not found \(branches: .*Pid"):
        read_truth_templates(path, mother="Mother")


def test_missing_tree_raises(tmp_path):
    path = write_truth(tmp_path / "t.root", [TREES[1][0]], [TREES[1][1]])
    with pytest.raises(DataError, match="tree 'events' not found"):
        read_truth_templates(path, tree="events")


def test_forward_mother_names_entry(tmp_path):
    path = write_truth(tmp_path / "t.root", [TREES[1][0], [443, 211, -211]], [TREES[1][1], [-1, 2, 0]])
    with pytest.raises(DataError, match=r"entry 1, particle 1: mother index 2 is invalid"):
        read_truth_templates(path)


def test_unknown_code_asks_for_table(tmp_path):
    path = write_truth(tmp_path / "t.root", [[443, 9999999, 22]], [[-1, 0, 0]])
    with pytest.raises(DataError, match="9999999.*pdt.table"):
        read_truth_templates(path)


def test_real_besiii_truth(shared_data):
    files = [shared_data / "topoana" / "jpsi1.root"]
    model = DecayModel.from_truth_trees(files, particle_table=shared_data / "decay" / "pdt.table")
    assert model._truth_templates.shape == (50_000,)
    ids, catalogue = model.sample(10_000, np.random.default_rng(2))
    assert all(catalogue[i].pdg[0] == 443 for i in np.unique(ids))
    mass, width, max_dm = model.particle_properties(9999999)  # x(1835) from pdt.table
    assert (mass, width, max_dm) == (1.8337, 0.068, 0.4)

    # the first stored event comes back unchanged
    arrays = uproot.open(files[0])["evt"].arrays(["Pid", "Midx"], entry_stop=1, library="np")
    first = catalogue[int(model._truth_templates[0])]
    np.testing.assert_array_equal(first.pdg, arrays["Pid"][0])
    np.testing.assert_array_equal(first.mother, arrays["Midx"][0])
