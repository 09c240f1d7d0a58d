"""Weight files: ``Weights``, ``WeightFormat``, the neutral safetensors format, and the
architecture a file holds.

Finding the format of a path and reading/writing any format is ``fmnist_core.io.formats``.

The neutral file is safetensors (no code runs on load) holding the model's parameters in the
neutral layout (``fmnist_core.spec.model``) and string metadata: ``fmnist_format``, ``model``,
``labels`` (JSON list), ``preprocessing``, ``backend``, ``versions`` (JSON) and ``config`` (JSON).
"""

from __future__ import annotations

import json
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


def read_safetensors(path: Path) -> Weights:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(
            f"cannot read {path}: {exc.strerror or exc}", fix="check the path"
        ) from exc
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
