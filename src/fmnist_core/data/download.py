"""Downloading the four original files, with a progress bar, verified before they are kept."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..errors import DataError
from .idx import read_file_bytes

MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)


def mirrors() -> list[str]:
    """Base URLs to try in order: ``$FMNIST_MIRRORS`` (comma-separated) or the official ones."""
    env = os.environ.get("FMNIST_MIRRORS")
    urls = env.split(",") if env else list(MIRRORS)
    return [url if url.endswith("/") else url + "/" for url in urls if url.strip()]


def _fetch(url: str, name: str, timeout: float = 30.0) -> bytes:
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks = []
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False) as bar:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def download_files(target: Path, searched: str = "") -> None:
    """Download each missing file into ``target``, trying every mirror, keeping only good copies."""
    from .spec import FILES

    target.mkdir(parents=True, exist_ok=True)
    for name, spec in FILES.items():
        path = target / f"{name}.gz"
        if path.is_file():
            continue
        problems = []
        for base in mirrors():
            url = f"{base}{name}.gz"
            try:
                payload = _fetch(url, name)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            tmp = target / f".{name}.gz.partial"
            tmp.write_bytes(payload)
            try:
                digest = hashlib.sha256(read_file_bytes(tmp)).hexdigest()
            except DataError as exc:
                problems.append(f"{url}: {exc.message}")
                continue
            finally:
                tmp.unlink(missing_ok=True)
            if digest != spec.sha256:
                problems.append(f"{url}: wrong checksum")
                continue
            atomic_write_bytes(path, payload)
            break
        else:
            where = f"searched: {searched}; " if searched else ""
            raise DataError(
                f"Fashion-MNIST not found and {name}.gz could not be downloaded; {where}"
                f"tried {'; '.join(problems)}",
                fix="`apt-get install dataset-fashion-mnist`, or pass --data-dir / set "
                "FMNIST_DATA_DIR to a folder with the four files",
            )
