"""Tests of the particle names and charges used in decay-tree strings."""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pytest

from pmse_graph.errors import DataError
from pmse_graph.topology.names import GENERAL_FSR_PHOTON, ParticleNames
from tests.topology.test_table import REFERENCE_OUTPUT_NAMES


def test_default_names_match_besiii_table_on_real_codes(truth_arrays, topoana_dir):
    table = ParticleNames.from_pid_table(topoana_dir / "pidtable_BESIII.dat")
    default = ParticleNames.default()
    codes = np.unique(ak.to_numpy(ak.flatten(truth_arrays.Pid))).tolist()
    assert len(codes) > 100
    for code in codes:
        if code in REFERENCE_OUTPUT_NAMES:
            # spelled as TopoAna's output jpsi_ta.txt, not as pidtable_BESIII.dat
            assert default.name(code) == REFERENCE_OUTPUT_NAMES[code]
            assert default.three_charge(code) == table.three_charge(code), code
            continue
        assert (default.name(code), default.three_charge(code)) == (table.name(code), table.three_charge(code)), code


@pytest.mark.parametrize(
    ("code", "name", "three_charge"),
    [(443, "J/psi", 0), (-11, "e+", 3), (2212, "p+", 3), (-2212, "anti-p-", -3), (310, "K_S0", 0), (-22, "gammaf", 0)],
)
def test_default_names(code: int, name: str, three_charge: int):
    names = ParticleNames.default()
    assert names.name(code) == name
    assert names.three_charge(code) == three_charge


def test_pid_table_adds_topoana_pseudo_particles(tmp_path):
    path = tmp_path / "pids.dat"
    path.write_text("# code 3*charge name tex cc\n211 3 pi+ \\pi^{+} 1\n\n-211 -3 pi- \\pi^{-} -1\n")
    names = ParticleNames.from_pid_table(path)
    assert names.name(-211) == "pi-"
    assert names.three_charge(211) == 3
    assert names.name(GENERAL_FSR_PHOTON) == "gammaF"


def test_pid_table_invalid_line_named(tmp_path):
    path = tmp_path / "pids.dat"
    path.write_text("211 3 pi+\n321 plus K+\n")
    with pytest.raises(DataError, match=r"Invalid line 2 in particle table .*pids.dat"):
        ParticleNames.from_pid_table(path)


def test_pid_table_missing_file(tmp_path):
    with pytest.raises(DataError, match="Particle table not found"):
        ParticleNames.from_pid_table(tmp_path / "absent.dat")


def test_unknown_code_warns_once(caplog):
    names = ParticleNames.default()
    with caplog.at_level(logging.WARNING, logger="pmse_graph.topology.names"):
        assert names.name(7777777) == "pdg7777777"
        assert names.three_charge(7777777) == 0
        names.name(7777777)
    assert len(caplog.records) == 1
    assert names.unknown_codes == frozenset({7777777})
