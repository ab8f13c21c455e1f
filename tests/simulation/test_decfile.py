"""Tests for DEC parsing: renormalisation, remainder lines, names, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmse_graph.errors import ConfigError
from pmse_graph.simulation.decfile import load_dec_file, read_particle_table

JPSI = 443


def write_dec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "test.dec"
    path.write_text(body)
    return path


def test_default_table_renormalised():
    table = load_dec_file()
    total = sum(mode.branching_fraction for mode in table.modes[JPSI]) + table.remainder[JPSI]
    assert total == pytest.approx(1.0, abs=1e-12)
    for pdg, modes in table.modes.items():
        assert sum(m.branching_fraction for m in modes) + table.remainder.get(pdg, 0.0) == pytest.approx(1.0, abs=1e-12)


def test_default_table_keeps_pythia_remainder():
    table = load_dec_file()
    # LHCb's table: ggg 0.365 + gamma gg 0.032 + q qbar 0.085 of a 1.0 total
    assert 0.45 < table.remainder[JPSI] < 0.52
    assert all(abs(d) not in (1, 2, 3, 21) for mode in table.modes[JPSI] for d in mode.daughters)


def test_besiii_table_fractions(shared_data):
    table = load_dec_file(shared_data / "decay" / "BES_DECAY_v145.DEC", on_unknown="drop")
    assert table.remainder[JPSI] == pytest.approx(0.461, abs=0.002)
    ee = [m for m in table.modes[JPSI] if sorted(m.daughters) == [-11, 11]]
    assert len(ee) == 1
    assert ee[0].branching_fraction == pytest.approx(0.0597, abs=0.0003)
    assert ee[0].photos
    assert ee[0].model == "VLL"
    assert {m.model for m in table.modes[JPSI]} >= {"J2BB1", "PHSP"}
    # BESIII names resolved through pdt.table, with its Breit-Wigner cut-off
    rho = table.properties(113)
    assert (rho.mass, rho.width, rho.max_dm) == (0.77549, 0.1494, 0.47)
    # f_0(1800) and f_2(1810) are unknown, phi(2170) (two lines) has no mass
    assert sorted(table.dropped_lines) == [7924, 7981, 8067, 8068]


def test_besiii_unknown_particle_raises(shared_data):
    with pytest.raises(ConfigError, match=r"BES_DECAY_v145\.DEC:7924: no mass known for 'phi\(2170\)'.*--unknown-particles drop"):
        load_dec_file(shared_data / "decay" / "BES_DECAY_v145.DEC")


def test_no_jpsi_block_raises(tmp_path):
    path = write_dec(tmp_path, "Decay rho0\n1.0 pi+ pi- VSS;\nEnddecay\nEnd\n")
    with pytest.raises(ConfigError, match=r"test\.dec: the DEC file has no J/psi block"):
        load_dec_file(path)


def test_unknown_particle_names_line(tmp_path):
    path = write_dec(tmp_path, "Decay J/psi\n0.5 pi+ pi- pi0 PHSP;\n0.5 pi+ notaparticle PHSP;\nEnddecay\nEnd\n")
    with pytest.raises(ConfigError, match=r"test\.dec:3: unknown particle 'notaparticle'"):
        load_dec_file(path)


def test_forbidden_mode_names_line(tmp_path):
    path = write_dec(tmp_path, "Decay J/psi\n\n0.5 pi+ pi- PHSP;\n0.5 p+ anti-p- p+ anti-p- PHSP;\nEnddecay\nEnd\n")
    with pytest.raises(ConfigError, match=r"test\.dec:4: kinematically forbidden mode J/psi -> p\+ anti-p- p\+ anti-p-"):
        load_dec_file(path)


def test_remainder_lines_and_subdecays(tmp_path):
    body = (
        "Alias myomega omega\n"
        "Decay J/psi\n0.2 myomega pi0 PHSP;\n0.2 g g g PYTHIA 92;\n0.4 LUNDCHARM;\n0.0 K_S0 K_S0 PHSP;\nEnddecay\n"
        "Decay myomega\n0.9 pi+ pi- pi0 OMEGA_DALITZ;\n0.1 pi0 gamma VVS_PWAVE 1.0 0.0 0.0 0.0 0.0 0.0;\nEnddecay\n"
        "Decay pi0\n1.0 gamma gamma PHSP;\nEnddecay\nEnd\n"
    )
    table = load_dec_file(write_dec(tmp_path, body))
    assert table.remainder[JPSI] == pytest.approx(0.6 / 0.8)
    assert [m.daughters for m in table.modes[JPSI]] == [(223, 111)]
    assert table.modes[JPSI][0].line == 3
    assert table.vetoed[JPSI] == {(310, 310)}
    assert [m.daughters for m in table.modes[223]] == [(211, -211, 111), (111, 22)]
    assert [m.branching_fraction for m in table.modes[223]] == pytest.approx([0.9, 0.1])
    assert table.modes[223][1].model == "VVS_PWAVE"
    assert table.modes[111][0].daughters == (22, 22)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="DEC file not found"):
        load_dec_file(tmp_path / "missing.dec")


def test_invalid_on_unknown_raises():
    with pytest.raises(ConfigError, match="on_unknown"):
        load_dec_file(on_unknown="ignore")  # type: ignore[arg-type]


def test_particle_table_read(shared_data):
    names = read_particle_table(shared_data / "decay" / "pdt.table")
    assert names["omega"].pdg == 223
    assert names["omega"].max_dm == pytest.approx(0.18)
    assert names["x(1835)"].pdg == 9999999
