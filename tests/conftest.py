"""Shared fixtures: the committed sample data, and the project's shared data when it is there."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def shared_nanopore() -> Path:
    path = SHARED / "nanopore"
    if not path.is_dir():
        pytest.skip("the project's shared data is not beside this checkout")
    return path
