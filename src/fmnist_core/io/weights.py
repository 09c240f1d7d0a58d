"""Weight files: ``Weights``, ``WeightFormat``, the neutral safetensors format, and the
architecture a file holds.

Finding the format of a path and reading/writing any format is ``fmnist_core.io.formats``.

The neutral file is safetensors (no code runs on load) holding the model's parameters in the
neutral layout (``fmnist_core.spec.model``) and string metadata: ``fmnist_format``, ``model``,
``labels`` (JSON list), ``preprocessing``, ``backend``, ``versions`` (JSON) and ``config`` (JSON).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import plugins
from ..atomic import atomic_write_bytes
from ..errors import ConfigError, WeightsError
from ..labels import LABELS
from ..spec.model import ModelSpec

NEUTRAL_FORMAT_VERSION = "1"
PREPROCESSING = "28x28 uint8 grayscale, light object on black, scaled by 1/255 to [0, 1]"


@dataclass
class Weights:
    """Parameters in the neutral layout, the model they belong to and their metadata."""

    model: str
    params: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightFormat:
    """A kind of weight file: how to recognise, read and write it.

    ``matches(path)`` says whether an existing path is of this format (by suffix or content);
    ``read`` returns ``Weights``; ``write`` stores ``Weights`` atomically.
    """

    name: str
    description: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], Weights] | None = None
    write: Callable[[Path, Weights], None] | None = None
    matches: Callable[[Path], bool] | None = None
    plugin: str = ""
    requires: tuple[str, ...] = ()  # modules it needs (checked without importing them)

    def unavailable_reason(self) -> str | None:
        """None when usable; otherwise the missing module."""
        import importlib.util

        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        return f"needs {', '.join(missing)}" if missing else None

    def claims(self, path: Path) -> bool:
        if self.matches is not None:
            return self.matches(path)
        return any(path.name.endswith(suffix) for suffix in self.suffixes)


MAX_HEADER_BYTES = 16 * 2**20
"""A safetensors header (JSON) longer than this is refused before it is read."""
MAX_WEIGHT_BYTES = 4 * 2**30
"""Tensors a weights file may declare in all (the largest fmnist model is far below it)."""
DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path: Path) -> Weights:
    """The tensors and metadata of a safetensors file, read by fmnist itself: the header is
    checked first (its size, JSON, every tensor's dtype, shape and byte range against the file),
    then each tensor's bytes, and nothing else: a file larger than its header says costs
    nothing, and a header that claims more than the file holds is refused before any read."""

    def bad(reason: str) -> WeightsError:
        return WeightsError(
            f"{path} is not a safetensors weights file ({reason})",
            fix="pass a file written by fmnist (`fmnist train` or Trainer.save)",
        )

    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or length > min(MAX_HEADER_BYTES, size - 8):
                raise bad(f"its header claims {length} bytes of a {size}-byte file")
            header = _header(handle.read(length), bad)
            metadata = header.pop("__metadata__", None) or {}
            if not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values()
            ):
                raise bad("its metadata is not a table of strings")
            if "model" not in metadata:
                raise WeightsError(
                    f"{path} is a safetensors file without fmnist metadata (no 'model' entry)",
                    fix="pass a file written by fmnist, or convert it with the model named",
                )
            entries = {
                name: _entry(name, entry, size - 8 - length, bad) for name, entry in header.items()
            }
            if sum(end - begin for _, _, begin, end in entries.values()) > MAX_WEIGHT_BYTES:
                raise bad(f"its tensors declare more than {MAX_WEIGHT_BYTES:,} bytes")
            _covered_exactly(entries, size - 8 - length, bad)
            params = {}
            for name, (dtype, shape, begin, end) in entries.items():
                handle.seek(8 + length + begin)
                data = handle.read(end - begin)
                if len(data) != end - begin:
                    raise bad(f"tensor {name[:60]!r} is cut short")
                params[name] = np.frombuffer(data, dtype).reshape(shape).copy()
    except OSError as exc:
        raise WeightsError(
            f"cannot read {path}: {exc.strerror or exc}", fix="check the path"
        ) from exc
    return Weights(metadata["model"], params, dict(metadata))


def _covered_exactly(entries: dict, room: int, bad) -> None:
    """The format's rule, checked from the header before any data is read: the tensors' byte
    ranges cover the data exactly, with no overlap, no hole and nothing after the last."""
    at = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin < at:
            raise bad(f"tensor {name[:60]!r} at bytes {begin}..{end} overlaps the one before it")
        if begin > at:
            raise bad(f"bytes {at}..{begin}, before tensor {name[:60]!r}, belong to no tensor")
        at = end
    if at != room:
        raise bad(f"{room - at:,} bytes after the last tensor belong to none")


def _header(raw: bytes, bad) -> dict:
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad(f"its header is not JSON: {str(exc)[:80]}") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    return header


def _entry(name: str, entry, room: int, bad) -> tuple[str, tuple[int, ...], int, int]:
    """(numpy dtype, shape, first byte, end) of one tensor's header entry, checked."""
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
        raise bad(f"tensor {name[:60]!r} has no known dtype")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 2**40 for d in shape):
        raise bad(f"tensor {name[:60]!r} has no valid shape")
    if not (
        isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
    ):
        raise bad(f"tensor {name[:60]!r} has no valid byte range")
    begin, end = offsets
    dtype = np.dtype(DTYPES[entry["dtype"]])
    if not 0 <= begin <= end <= room or end - begin != dtype.itemsize * math.prod(shape):
        raise bad(
            f"tensor {name[:60]!r} claims bytes {begin}..{end} for shape {shape[:8]}; the "
            "data "
            f"holds {room:,} bytes"
        )
    return dtype.str, tuple(shape), begin, end


def write_safetensors(path: Path, weights: Weights) -> None:
    from safetensors.numpy import save

    metadata = {
        "fmnist_format": NEUTRAL_FORMAT_VERSION,
        "labels": json.dumps(list(LABELS)),
        "preprocessing": PREPROCESSING,
        **weights.metadata,
        "model": weights.model,
    }
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.params.items()}
    atomic_write_bytes(path, save(tensors, metadata={k: str(v) for k, v in metadata.items()}))


NEUTRAL = WeightFormat(
    name="safetensors",
    description="fmnist's neutral format: safetensors, neutral layout, metadata",
    suffixes=(".safetensors",),
    read=read_safetensors,
    write=write_safetensors,
    plugin="fmnist_core",
)


def architecture_of(weights: Weights) -> ModelSpec:
    """The architecture of ``weights``: the registered recipe of that name, else the one the file
    records (a user's own ``ModelSpec``); a malformed record is a ``ConfigError``."""
    registered = plugins.models()
    if weights.model in registered:
        return registered[weights.model]
    recorded = weights.metadata.get("architecture")
    if recorded:
        try:
            description = json.loads(recorded)
        except (json.JSONDecodeError, RecursionError):
            raise ConfigError(
                f"the recorded architecture of model {weights.model!r} is not JSON",
                fix="save the weights again with fmnist",
            ) from None
        return ModelSpec.from_dict(description)
    return plugins.get_model(weights.model)  # the unknown-model error
