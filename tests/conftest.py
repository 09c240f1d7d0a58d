import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ARTIFACTS = SHARED / "seed-artifacts"
REAL_DATA = Path(os.environ.get("FMNIST_REAL_DATA", "/usr/share/datasets/fashion-mnist"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder and never downloads."""
    os.environ.setdefault("FMNIST_CACHE_DIR", str(tmp_path_factory.mktemp("fmnist-cache")))
    os.environ["FMNIST_OFFLINE"] = "1"
    yield


@pytest.fixture
def real_data_dir():
    if not (REAL_DATA / "t10k-labels-idx1-ubyte.gz").exists() and not (REAL_DATA / "t10k-labels-idx1-ubyte").exists():
        pytest.fail(f"real Fashion-MNIST missing in {REAL_DATA}: apt-get install dataset-fashion-mnist")
    return REAL_DATA


@pytest.fixture
def artifacts():
    if not ARTIFACTS.exists():
        pytest.fail(f"{ARTIFACTS} missing: the tests need shared/seed-artifacts beside the repo")
    return ARTIFACTS
