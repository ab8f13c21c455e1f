"""Fixtures of the data-layer tests: small BESIII-format files written per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data import ntuple_writer


@pytest.fixture()
def besiii_file(tmp_path: Path) -> Path:
    """A valid file with three events of 3, 1 and 4 particles."""
    return ntuple_writer.write_besiii(tmp_path / "valid.root", ntuple_writer.three_events())
