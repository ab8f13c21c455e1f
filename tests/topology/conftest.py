"""Fixtures of the topology tests: the real TopoAna truth files and their reference output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import pytest
import uproot

TRUTH_FILES = ("jpsi1.root", "jpsi2.root")


@dataclass
class ReferenceRow:
    """One decay tree of TopoAna's text output."""

    rank: int
    first_seen: int
    count: int
    tree: str
    final_state: str


def parse_topoana_output(path: Path) -> list[ReferenceRow]:
    """Read the decay-tree rows of a TopoAna ``*.txt`` output, branches joined by ``"; "``."""
    rows: list[ReferenceRow] = []
    branches: list[str] = []
    header: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("rowNo:"):
            header = line.split()
            branches = []
        elif header and line.startswith("  ") and "-->" in line:
            branches.append(line.strip())
        elif header and line.startswith("( ") and line.endswith(" )"):
            rows.append(ReferenceRow(int(header[1]), int(header[3]), int(header[5]), "; ".join(branches), line[2:-2]))
            header = []
    return rows


@pytest.fixture(scope="session")
def topoana_dir(shared_data: Path) -> Path:
    return shared_data / "topoana"


@pytest.fixture(scope="session")
def truth_arrays(topoana_dir: Path) -> ak.Array:
    """``Pid`` and ``Midx`` of both real truth files, 100,000 events in file order."""
    parts = [uproot.open(topoana_dir / name)["evt"].arrays(["Pid", "Midx"]) for name in TRUTH_FILES]
    return ak.concatenate(parts)


@pytest.fixture(scope="session")
def reference_rows(topoana_dir: Path) -> list[ReferenceRow]:
    return parse_topoana_output(topoana_dir / "jpsi_ta.txt")
