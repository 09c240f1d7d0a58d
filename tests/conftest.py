import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACT_PLACES = [Path(p) for p in (os.environ.get("FMNIST_ARTICLE_ARTIFACTS"),) if p]
ARTIFACT_PLACES.append(REPO.parent / "shared" / "seed-artifacts")
REAL_DATA = Path(os.environ.get("FMNIST_REAL_DATA", "/usr/share/datasets/fashion-mnist"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder and never downloads."""
    os.environ.setdefault("FMNIST_CACHE_DIR", str(tmp_path_factory.mktemp("fmnist-cache")))
    os.environ["FMNIST_OFFLINE"] = "1"
    yield


@pytest.fixture
def real_data_dir():
    if (
        not (REAL_DATA / "t10k-labels-idx1-ubyte.gz").exists()
        and not (REAL_DATA / "t10k-labels-idx1-ubyte").exists()
    ):
        pytest.fail(
            f"real Fashion-MNIST missing in {REAL_DATA}: apt-get install dataset-fashion-mnist"
        )
    return REAL_DATA


def find_artifacts() -> Path | None:
    """The article's own files (weights.pth, tf-savedmodel/, sample-request/, predict-image.png)."""
    return next((p for p in ARTIFACT_PLACES if (p / "predict-image.png").is_file()), None)


@pytest.fixture
def artifacts():
    """The article's files; tests that need them skip where a user's clone has none."""
    found = find_artifacts()
    if found is None:
        pytest.skip(
            "the article's files are not here (looked in $FMNIST_ARTICLE_ARTIFACTS and "
            f"{ARTIFACT_PLACES[-1]}); they come with the article's repository"
        )
    return found
