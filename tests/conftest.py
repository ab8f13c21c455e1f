"""Fixtures shared by every test module: paths to the real reference files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real reference files (TopoAna truth, decay tables, scikit-hep ntuples)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"Reference data folder not found at {SHARED_DATA}; the tests expect ../shared/data beside the repository")
    return SHARED_DATA
