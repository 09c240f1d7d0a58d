"""Reading IDX files (the format of the original MNIST and Fashion-MNIST files), raw or gzipped.

Every check names the file and says what is wrong with it: gzip damage, magic number, type
code, dimension count, and the sizes in the header against the file's real length.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_FIX = "delete the file and let fmnist find or download a good copy, or reinstall the data"


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """The decompressed content of ``path``: gunzipped when it starts with the gzip magic."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", fix=_FIX) from exc
    if data[:2] != GZIP_MAGIC:
        if path.suffix == ".gz":
            raise DataError(f"{path} is not a gzip file (no gzip magic number)", fix=_FIX)
        return data
    try:
        return gzip.decompress(data)
    except EOFError as exc:
        raise DataError(f"{path} is a truncated gzip file ({len(data)} bytes)", fix=_FIX) from exc
    except (OSError, zlib.error) as exc:
        raise DataError(f"{path} is a corrupt gzip file ({exc})", fix=_FIX) from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array (native byte order), validating the header against the data."""
    if len(data) < 4:
        raise DataError(f"{name} is too short to be an IDX file ({len(data)} bytes)", fix=_FIX)
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{name} has a wrong IDX magic number {data[:4].hex()} (expected 0000TTNN)", fix=_FIX
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPES:
        raise DataError(f"{name} has an unknown IDX type code 0x{type_code:02x}", fix=_FIX)
    if ndim == 0:
        raise DataError(f"{name} declares 0 dimensions", fix=_FIX)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{name} is truncated inside its header ({len(data)} bytes, header needs {header})",
            fix=_FIX,
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise DataError(
            f"{name} is truncated: its header declares shape {shape} ({expected} bytes) "
            f"but it holds {len(data)} bytes",
            fix=_FIX,
        )
    if len(data) > expected:
        raise DataError(
            f"{name} has {len(data) - expected} unexpected bytes after the data of shape {shape}",
            fix=_FIX,
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into an array."""
    return parse_idx(read_file_bytes(path), str(path))
