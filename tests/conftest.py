"""Shared fixtures: the committed sample data, and the project's shared data when it is there.
The suite keeps compiled programs in a cache of its own, not the user's, and starts every test
from the same random state (layers' initial weights included), so a run cannot pass or fail on
the draw."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def own_compile_cache(tmp_path_factory):
    os.environ["NANOSEQ_CACHE"] = str(tmp_path_factory.mktemp("compile-cache"))


@pytest.fixture(autouse=True)
def seeded():
    import keras

    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def shared_nanopore() -> Path:
    path = SHARED / "nanopore"
    if not path.is_dir():
        pytest.skip("the project's shared data is not beside this checkout")
    return path
