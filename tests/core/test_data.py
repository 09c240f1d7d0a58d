import gzip
import http.server
import shutil
import threading
import time

import numpy as np
import pytest

from fmnist_core.data import dataset as data
from fmnist_core.errors import DataError


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_loads_real_data_and_caches(real_data_dir, fresh_cache):
    first = data.load_dataset(real_data_dir)
    assert first.train.images.shape == (60000, 28, 28) and first.train.images.dtype == np.uint8
    assert first.test.labels.shape == (10000,) and first.test.labels.max() == 9
    assert list(fresh_cache.glob("verified/*/*/*.npy"))
    started = time.perf_counter()
    second = data.load_dataset(real_data_dir)
    assert time.perf_counter() - started < 5  # generous; the benchmark reports the real figure
    np.testing.assert_array_equal(first.test.images, second.test.images)
    assert isinstance(second.train.images, np.memmap)


def test_search_order_env_and_explicit(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"\$FMNIST_DATA_DIR .* lacks"):
        data.locate()
    with pytest.raises(DataError, match="data_dir .* lacks train-images"):
        data.locate(tmp_path / "nothing")


def test_nothing_found_offline_lists_places(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    with pytest.raises(DataError) as info:
        data.load_dataset(download=False)
    message = str(info.value)
    for place in (
        "fmnist cache",
        "Debian",
        "torchvision",
        "Keras",
        "apt-get install dataset-fashion-mnist",
    ):
        assert place in message
    assert "\n" not in message


def copy_real(real_data_dir, target):
    target.mkdir(parents=True, exist_ok=True)
    for name in data.FILES:
        shutil.copy(real_data_dir / f"{name}.gz", target / f"{name}.gz")
    return target


def test_checksum_mismatch_names_file_and_skip_knowingly(real_data_dir, tmp_path, fresh_cache):
    folder = copy_real(real_data_dir, tmp_path / "d")
    path = folder / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[100] = (content[100] + 1) % 10
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match="wrong checksum") as info:
        data.load_dataset(folder)
    assert str(path) in str(info.value) and "--skip-checksums" in str(info.value)
    loaded = data.load_dataset(folder, verify=False)
    assert loaded.test.labels.shape == (10000,)


def test_truncated_file_named(real_data_dir, tmp_path, fresh_cache):
    folder = copy_real(real_data_dir, tmp_path / "d")
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated") as info:
        data.load_dataset(folder)
    assert str(path) in str(info.value)


def test_raw_files_accepted(real_data_dir, tmp_path, fresh_cache):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in data.FILES:
        (folder / name).write_bytes(gzip.decompress((real_data_dir / f"{name}.gz").read_bytes()))
    assert data.load_dataset(folder).train.labels.shape == (60000,)


class _Server:
    def __init__(self, root):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_download_from_local_mirror_with_a_corrupt_one(
    real_data_dir, tmp_path, monkeypatch, fresh_cache
):
    good = copy_real(real_data_dir, tmp_path / "good")
    bad = copy_real(real_data_dir, tmp_path / "bad")
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 100))
    bad_server, good_server = _Server(bad), _Server(good)
    try:
        monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("FMNIST_MIRRORS", f"{bad_server.url},{good_server.url}")
        loaded = data.load_dataset(download=True)
        assert loaded.source.startswith("fmnist cache")
        assert (fresh_cache / "downloads" / "t10k-labels-idx1-ubyte.gz").read_bytes() == (
            good / "t10k-labels-idx1-ubyte.gz"
        ).read_bytes()
        monkeypatch.setenv("FMNIST_MIRRORS", bad_server.url)
        (fresh_cache / "downloads" / "t10k-labels-idx1-ubyte.gz").unlink()
        with pytest.raises(DataError, match="wrong checksum"):
            data.load_dataset(download=True)
    finally:
        bad_server.close()
        good_server.close()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b"\x01" + b[1:], "wrong IDX magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
        (
            lambda b: b[:3] + b"\x02" + b[4:],
            "declares 2 dimensions, but t10k-labels-idx1-ubyte has 1",
        ),
        (
            lambda b: b[:4] + (20000).to_bytes(4, "big") + b[8:],
            "truncated: its header declares shape",
        ),
    ],
)
def test_header_damage_named_before_checksum(real_data_dir, tmp_path, fresh_cache, change, message):
    folder = copy_real(real_data_dir, tmp_path / "d")
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes()))))
    with pytest.raises(DataError, match=message) as info:
        data.load_dataset(folder)
    assert str(path) in str(info.value)


def test_dataset_repr_is_one_short_line():
    from fmnist_core.testing import synthetic_dataset

    data = synthetic_dataset()
    text = repr(data)
    assert "\n" not in text and len(text) < 200 and "array" not in text
    assert f"train={len(data.train.labels):,} images" in text and "Split(" in repr(data.train)
