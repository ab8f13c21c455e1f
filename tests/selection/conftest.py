"""A small generated rho pi sample with backgrounds, shared by the selection tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pmse_graph.simulation.decay_model import DecayModel
from pmse_graph.simulation.detector import DetectorResponse
from pmse_graph.simulation.generator import SimulationConfig, simulate

NUM_EVENTS = 4000

# J/psi -> rho pi three ways and non-resonant pi+ pi- pi0, plus K+K-pi0, e+e- and mu+mu-
RHO_PI_DEC = """\
Decay J/psi
0.22 pi+ rho- VSS;
0.22 pi- rho+ VSS;
0.22 pi0 rho0 VSS;
0.10 pi+ pi- pi0 PHSP;
0.10 K+ K- pi0 PHSP;
0.07 e+ e- PHOTOS VLL;
0.07 mu+ mu- PHOTOS VLL;
Enddecay
Decay rho+
1.0 pi+ pi0 VSS;
Enddecay
Decay rho-
1.0 pi- pi0 VSS;
Enddecay
Decay rho0
1.0 pi+ pi- VSS;
Enddecay
Decay pi0
1.0 gamma gamma PHSP;
Enddecay
End
"""


# backgrounds of the hypothesis vetoes, and rho pi with PHOTOS radiation in the rho decay
VETO_DEC = """\
Decay J/psi
0.4 gamma pi+ pi- PHSP;
0.4 gamma pi+ pi- pi0 PHSP;
0.2 pi0 rho0 VSS;
Enddecay
Decay rho0
1.0 pi+ pi- PHOTOS VSS;
Enddecay
Decay pi0
1.0 gamma gamma PHSP;
Enddecay
End
"""


@dataclass
class GeneratedSample:
    """ROOT files and topology table of one generated run."""

    folder: Path
    paths: list[Path]
    topology: Path


@pytest.fixture(scope="session")
def rho_pi_sample(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSample:
    folder = tmp_path_factory.mktemp("rho_pi")
    dec_path = folder / "rho_pi.dec"
    dec_path.write_text(RHO_PI_DEC)
    model = DecayModel.from_dec_file(dec_path)
    config = SimulationConfig(num_events=NUM_EVENTS, seed=11, chunk_size=2000, events_per_file=2500)
    summary = simulate(model=model, response=DetectorResponse.from_config(), config=config, out_dir=folder / "sim", progress=False)
    return GeneratedSample(folder=folder / "sim", paths=summary.paths, topology=summary.topology_path)


@pytest.fixture(scope="session")
def veto_sample(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSample:
    folder = tmp_path_factory.mktemp("veto")
    dec_path = folder / "veto.dec"
    dec_path.write_text(VETO_DEC)
    model = DecayModel.from_dec_file(dec_path)
    config = SimulationConfig(num_events=2000, seed=12, chunk_size=2000, events_per_file=2500)
    summary = simulate(model=model, response=DetectorResponse.from_config(), config=config, out_dir=folder / "sim", progress=False)
    return GeneratedSample(folder=folder / "sim", paths=summary.paths, topology=summary.topology_path)
