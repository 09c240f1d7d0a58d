"""Weight files: the neutral safetensors format and the registry of formats plugins add.

The neutral file is safetensors (no code runs on load) holding the model's parameters in the
neutral layout (``fmnist_core.models``) and string metadata: ``fmnist_format``, ``model``,
``labels`` (JSON list), ``preprocessing``, ``backend``, ``versions`` (JSON) and ``config`` (JSON).
"""

from __future__ import annotations

import glob
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import WeightsError
from .files import atomic_write_bytes
from .labels import LABELS

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


def lazy(module: str, name: str) -> Callable:
    """``module.name``, imported on first call: plugins register formats without importing
    their framework (e.g. ``read=lazy("fmnist_tf.formats", "read_checkpoint")``)."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def read_safetensors(path: Path) -> Weights:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}", fix="check the path") from exc
    try:
        params = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise WeightsError(
            f"{path} is not a safetensors weights file ({exc})",
            fix="pass a file written by fmnist (`fmnist train` or Trainer.save)",
        ) from exc
    metadata = header.get("__metadata__") or {}
    if "model" not in metadata:
        raise WeightsError(
            f"{path} is a safetensors file without fmnist metadata (no 'model' entry)",
            fix="pass a file written by fmnist, or convert it with the model named",
        )
    return Weights(metadata["model"], dict(params), dict(metadata))


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


def format_for(path: str | os.PathLike, format: str | None = None, *, for_writing: bool = False) -> WeightFormat:
    """The registered format named ``format``, or the one ``path`` belongs to.

    The order is explicit: the longest declared suffix that ends the name wins; a name no suffix
    matches goes to the formats that recognise it by content (a SavedModel folder, a checkpoint
    prefix). Where several formats claim the same name, the neutral format comes first; any
    other tie is an error listing the candidates.
    """
    from .plugins import weight_formats

    formats = weight_formats()
    path = Path(path)
    if format is not None:
        if format not in formats:
            raise WeightsError(
                f"unknown weight format {format!r}; installed formats: {', '.join(sorted(formats))}",
                fix="pick one of those, or install the plugin that provides it",
            )
        return formats[format]
    lengths = {f.name: max((len(s) for s in f.suffixes if path.name.endswith(s)), default=0) for f in formats.values()}
    longest = max(lengths.values(), default=0)
    candidates = [f for f in formats.values() if longest and lengths[f.name] == longest]
    if not candidates and not for_writing:
        candidates = [f for f in formats.values() if f.matches is not None and f.matches(path)]
    if len(candidates) > 1:
        if NEUTRAL.name in (f.name for f in candidates):
            return formats[NEUTRAL.name]
        raise WeightsError(
            f"{path} could be any of several formats: {', '.join(f'{f.name} ({f.plugin})' for f in candidates)}",
            fix="name one with format=... / --from / --to",
        )
    if candidates:
        return candidates[0]
    known = ", ".join(f"{f.name} ({' '.join(f.suffixes)})" for f in formats.values())
    raise WeightsError(
        f"no installed plugin understands {path}; known formats: {known}",
        fix="use one of those names or suffixes, or install the plugin for that framework",
    )


def read_weights(path: str | os.PathLike, format: str | None = None) -> Weights:
    """Read any weights file an installed plugin understands, into the neutral layout."""
    path = Path(path)
    # a prefix-named format (a TF checkpoint: PATH.index + PATH.data-…) has no file at PATH itself
    if not path.exists() and not any(path.parent.glob(f"{glob.escape(path.name)}.*")):
        raise WeightsError(f"weights file {path} does not exist", fix="check the path")
    fmt = format_for(path, format)
    if fmt.read is None:
        raise WeightsError(f"format {fmt.name} cannot be read", fix="use another format")
    return fmt.read(path)


def write_weights(path: str | os.PathLike, weights: Weights, format: str | None = None) -> WeightFormat:
    """Write ``weights`` in ``format`` (default: chosen by the suffix, else safetensors)."""
    path = Path(path)
    try:
        fmt = format_for(path, format, for_writing=True)
    except WeightsError:
        if format is not None:
            raise
        fmt = NEUTRAL
    if fmt.write is None:
        raise WeightsError(f"format {fmt.name} cannot be written", fix="use another format")
    fmt.write(path, weights)
    return fmt
