"""The Fashion-MNIST dataset: its spec, where its files are found, verification and the cache.

Files are looked for, in order: an explicit ``data_dir``; ``$FMNIST_DATA_DIR``; fmnist's own
download folder in the user cache; Debian's ``/usr/share/datasets/fashion-mnist`` (package
``dataset-fashion-mnist``); a torchvision root (``./data/FashionMNIST/raw``); the Keras cache
(``~/.keras/datasets/fashion-mnist``). When none has them, they are downloaded into the cache.

The SHA-256 of each file's *decompressed* content is checked once; the arrays are then kept as
``.npy`` files in the cache and memory-mapped on later loads, which take milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import DataError, StorageError
from .idx import parse_idx, read_file_bytes
from .spec import FILES, IMAGE_SHAPE, SPLIT_FILES, IdxFileSpec  # noqa: F401  (re-exported)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_LAYOUT_VERSION = "v1"


@dataclass(frozen=True, repr=False)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of one split."""

    def __repr__(self) -> str:
        return f"Split({len(self.labels):,} images of {IMAGE_SHAPE[0]}×{IMAGE_SHAPE[1]})"

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.ndim != 3 or self.images.shape[1:] != IMAGE_SHAPE:
            raise DataError(
                f"images must have shape (N, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}), got "
                f"{self.images.shape}"
            )
        if self.images.dtype != np.uint8 or self.labels.dtype != np.uint8:
            raise DataError("images and labels must be uint8 arrays")
        if self.labels.shape != (len(self.images),):
            raise DataError(f"{len(self.images)} images but labels of shape {self.labels.shape}")
        if len(self.labels) and int(self.labels.max()) >= 10:
            raise DataError(f"labels must lie in 0..9, found {int(self.labels.max())}")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Split:
        """The samples at ``indices``, as a new split."""
        return Split(self.images[indices], self.labels[indices])


VALIDATION_SEED = 0x7A11D
"""The split is the same for every run, seed and backend, so that runs and sweep trials compare."""


def validation_indices(labels: np.ndarray, size: int | float) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split of ``range(len(labels))``: (training indices, validation indices).

    ``size`` is a count (``5000``) or a fraction (``0.1``). Each class gives its share (largest
    remainders settle the rounding), drawn with a fixed seed; both lists come sorted.
    """
    from ..errors import ConfigError

    labels = np.asarray(labels)
    count = round(size * len(labels)) if isinstance(size, float) and 0 < size < 1 else size
    if (
        isinstance(count, bool)
        or not isinstance(count, (int, np.integer))
        or not 0 < count < len(labels)
    ):
        raise ConfigError(
            f"validation must be a count in 1…{len(labels) - 1} or a fraction in (0, 1), got "
            f"{size!r}",
            fix="pass validation=5000 or validation=0.1",
        )
    classes, totals = np.unique(labels, return_counts=True)
    exact = count * totals / len(labels)
    shares = np.floor(exact).astype(int)
    shares[np.argsort(-(exact - shares), kind="stable")[: count - shares.sum()]] += 1
    rng = np.random.default_rng(np.random.SeedSequence([VALIDATION_SEED]))
    chosen = np.concatenate(
        [
            rng.permutation(np.flatnonzero(labels == c))[:n]
            for c, n in zip(classes, shares, strict=True)
        ]
    )
    mask = np.zeros(len(labels), bool)
    mask[chosen] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


@dataclass(frozen=True, repr=False)
class Dataset:
    """The train and test splits, and where they were read from."""

    def __repr__(self) -> str:
        return (
            f"Dataset(train={len(self.train.labels):,} images, test={len(self.test.labels):,} "
            f"images, source={self.source!r})"
        )

    train: Split
    test: Split
    source: str = "<memory>"


def cache_dir() -> Path:
    """fmnist's cache folder: ``$FMNIST_CACHE_DIR`` or the platform's user cache."""
    env = os.environ.get("FMNIST_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("fmnist"))


def download_dir() -> Path:
    """Where downloaded original files are kept."""
    return cache_dir() / "downloads"


def search_path(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The places searched for the four files, in order, each with a label."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places.append(("data_dir", Path(data_dir).expanduser()))
    elif os.environ.get("FMNIST_DATA_DIR"):
        places.append(("$FMNIST_DATA_DIR", Path(os.environ["FMNIST_DATA_DIR"]).expanduser()))
    else:
        places += [
            ("fmnist cache", download_dir()),
            ("Debian package dataset-fashion-mnist", DEBIAN_DIR),
            ("torchvision root ./data", Path("data") / "FashionMNIST" / "raw"),
            ("Keras cache", Path.home() / ".keras" / "datasets" / "fashion-mnist"),
        ]
    return places


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` (raw or ``.gz``), or None when any is missing."""
    found = {}
    for name in FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            return None
    return found


def locate(data_dir: str | os.PathLike | None = None) -> tuple[str, dict[str, Path]] | None:
    """The first place on the search path holding all four files, or None.

    An explicit ``data_dir`` (or ``$FMNIST_DATA_DIR``) that lacks a file is an error: the user
    asked for that folder, so fmnist does not quietly use another.
    """
    for label, folder in search_path(data_dir):
        files = find_files(folder)
        if files is not None:
            return label, files
        if label in ("data_dir", "$FMNIST_DATA_DIR"):
            missing = [
                n for n in FILES if not (folder / n).exists() and not (folder / f"{n}.gz").exists()
            ]
            raise DataError(
                f"{label} {folder} lacks {', '.join(missing)} (raw or .gz)",
                fix="point it at a folder holding the four Fashion-MNIST files, or unset it",
            )
    return None


def verify_and_parse(path: Path, spec: IdxFileSpec, verify: bool = True) -> np.ndarray:
    """Decompress and parse one file, then check its shape and (unless ``verify`` is False) the
    SHA-256 of its content. Structure comes first: a broken header says more than a checksum."""
    content = read_file_bytes(path)
    if len(content) >= 4 and content[:2] == b"\x00\x00" and content[3] != len(spec.shape):
        raise DataError(
            f"{path} declares {content[3]} dimensions, but {spec.name} has {len(spec.shape)} "
            f"(shape {spec.shape})",
            fix="delete the file and let fmnist find or download a good copy, "
            "or reinstall the data",
        )
    array = parse_idx(content, str(path))
    if array.shape != spec.shape or array.dtype != np.uint8:
        raise DataError(
            f"{path} holds {array.dtype} data of shape {array.shape}, expected uint8 {spec.shape}",
            fix="use the original Fashion-MNIST files",
        )
    if verify:
        digest = hashlib.sha256(content).hexdigest()
        if digest != spec.sha256:
            raise DataError(
                f"{path} has the wrong checksum: SHA-256 of its content is {digest[:16]}…, "
                f"expected {spec.sha256[:16]}… for {spec.name}",
                fix="delete it and get a good copy, or pass verify_checksums=False / "
                "--skip-checksums "
                "to use it knowingly",
            )
    return array


def _cache_key(files: dict[str, Path]) -> str:
    """Identifies the source files by path, size and modification time."""
    signature = []
    for name in sorted(files):
        stat = files[name].stat()
        signature.append([name, str(files[name].resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(signature).encode()).hexdigest()[:20]


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_arrays(files: dict[str, Path], verify: bool = True) -> dict[str, np.ndarray]:
    """The four arrays from ``files``: from the verified cache when the files are unchanged.

    A cached array of the wrong dtype or shape, with labels outside 0..9, truncated or not an
    array, is rebuilt from the verified files (they are re-checked against their SHA-256);
    ``verify_cache`` also compares each cached array with the digest stored beside it.
    """
    if not verify:
        return {name: verify_and_parse(files[name], FILES[name], verify=False) for name in FILES}
    cached = cache_paths(files)
    if all(path.is_file() for path in cached.values()):
        try:
            arrays = {name: np.load(path, mmap_mode="r") for name, path in cached.items()}
            if all(_plausible(name, array) for name, array in arrays.items()):
                return arrays
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    arrays = {name: verify_and_parse(files[name], FILES[name]) for name in FILES}
    with contextlib.suppress(OSError, StorageError):  # a read-only cache only costs speed
        for name, array in arrays.items():
            atomic_write_bytes(cached[name], _npy_bytes(array))
        digests = {
            name: hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()
            for name, array in arrays.items()
        }
        atomic_write_bytes(_digest_path(cached), json.dumps(digests, indent=1).encode())
    return arrays


def cache_paths(files: dict[str, Path]) -> dict[str, Path]:
    """Where the verified arrays of ``files`` are cached (one ``.npy`` each)."""
    folder = cache_dir() / "verified" / CACHE_LAYOUT_VERSION / _cache_key(files)
    return {name: folder / f"{name}.npy" for name in FILES}


def _digest_path(cached: dict[str, Path]) -> Path:
    return next(iter(cached.values())).parent / "sha256.json"


def _plausible(name: str, array: np.ndarray) -> bool:
    """The checks every cached load makes (cheap): dtype, shape, and labels in 0..9."""
    spec = FILES[name]
    if array.dtype != np.uint8 or array.shape != spec.shape:
        return False
    return len(spec.shape) != 1 or int(array.max(initial=0)) < 10


def verify_cache(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Re-hash the cached arrays of the data found for ``data_dir`` against the digests stored
    when they were verified (``fmnist info --verify``): name → "ok", "rebuilt" or the reason. A
    cache entry that fails is deleted, so the next load rebuilds it from the verified files."""
    found = locate(data_dir)
    if found is None:
        return {}
    cached = cache_paths(found[1])
    try:
        digests = json.loads(_digest_path(cached).read_text())
    except (OSError, ValueError):
        digests = {}
    report = {}
    for name, path in cached.items():
        if not path.is_file():
            report[name] = "not cached yet"
            continue
        try:
            digest = hashlib.sha256(np.ascontiguousarray(np.load(path)).data).hexdigest()
        except (OSError, ValueError) as exc:
            digest = f"unreadable ({exc})"
        if digest == digests.get(name):
            report[name] = "ok"
        else:
            path.unlink(missing_ok=True)
            report[name] = "did not match its digest: deleted, the next load rebuilds it"
    return report


def load_dataset(
    data_dir: str | os.PathLike | None = None, *, download: bool | None = None, verify: bool = True
) -> Dataset:
    """Find, verify and load Fashion-MNIST; download it when allowed and nowhere to be found.

    ``download`` defaults to True unless ``$FMNIST_OFFLINE`` is set.
    """
    found = locate(data_dir)
    if found is None:
        if download is None:
            download = not os.environ.get("FMNIST_OFFLINE")
        searched = "; ".join(f"{label} ({path})" for label, path in search_path(data_dir))
        if not download:
            raise DataError(
                f"Fashion-MNIST not found; searched: {searched}; downloading is off",
                fix="`apt-get install dataset-fashion-mnist`, or pass --data-dir / set "
                "FMNIST_DATA_DIR to a folder with the four files, or allow the download",
            )
        from .download import download_files

        download_files(download_dir(), searched=searched)
        found = locate(data_dir)
        assert found is not None
    label, files = found
    arrays = load_arrays(files, verify=verify)
    splits = {
        split: Split(arrays[images], arrays[labels])
        for split, (images, labels) in SPLIT_FILES.items()
    }
    folder = next(iter(files.values())).parent
    return Dataset(splits["train"], splits["test"], source=f"{label}: {folder}")
