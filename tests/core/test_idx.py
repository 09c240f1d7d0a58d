import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmnist_core.data.idx import parse_idx, read_idx
from fmnist_core.errors import DataError


def idx_bytes(array: np.ndarray, type_code=0x08) -> bytes:
    return (
        struct.pack(">BBBB", 0, 0, type_code, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


def test_reads_raw_and_gzip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), array)


def test_big_endian_types():
    array = np.array([1, -2, 300], dtype=">i4")
    np.testing.assert_array_equal(parse_idx(idx_bytes(array, 0x0C)), [1, -2, 300])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "magic number"),
        (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05", "type code"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01", "inside its header"),
        (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x05" + b"\x01\x02", "truncated"),
        (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x01\x02", "unexpected bytes"),
    ],
)
def test_header_errors_name_the_file(data, message):
    with pytest.raises(DataError, match=message) as info:
        parse_idx(data, "some-file")
    assert "some-file" in str(info.value) and "\n" not in str(info.value)


def test_truncated_gzip(tmp_path):
    payload = gzip.compress(idx_bytes(np.zeros((100, 28, 28), np.uint8)))
    path = tmp_path / "x.gz"
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match="truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_not_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"hello world")
    with pytest.raises(DataError, match="not a gzip file"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    payload = bytearray(gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7)))
    payload[20:30] = b"\xff" * 10
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(payload))
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_any_bytes_give_array_or_data_error(data):
    try:
        parse_idx(data, "fuzz")
    except DataError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_gzip_reader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "f.gz"
    path.write_bytes(b"\x1f\x8b" + data)
    try:
        read_idx(path)
    except DataError:
        pass
