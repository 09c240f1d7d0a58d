"""An export (``fmnist export``) served by its own runtime: ``fmnist serve model.int8.onnx``,
``model.pt2`` or ``model.tflite`` answers with the artifact itself, not weights rebuilt in a
training framework. A plain ``.onnx`` is served as before, by the onnx backend."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..data.arrays import as_images
from ..data.augment import flipped
from ..errors import FmnistError, WeightsError
from ..io.exports import EXPORT_KEY, ExportTarget
from ..io.weights import Weights, architecture_of
from ..plugins import export_targets


def exported_target(path: str | os.PathLike) -> ExportTarget | None:
    """The export target ``path`` was written by, when it is one served by its own runtime."""
    path = Path(path)
    if not path.is_file():
        return None
    targets = [t for t in export_targets().values() if not t.suffix.endswith("/")]
    for target in sorted(targets, key=lambda t: len(t.suffix), reverse=True):
        if target.name != "onnx" and path.name.endswith(target.suffix):
            return target
    int8 = export_targets().get("onnx-int8")
    if path.name.endswith(".onnx") and int8 is not None and int8.unavailable_reason() is None:
        if read_by(int8, "read_metadata", path).get(EXPORT_KEY) == "onnx-int8":
            return int8
    return None


def read_by(target: ExportTarget, what: str, path: Path):
    """``target.read_metadata(path)`` or ``target.load(path)``: whatever the format's own
    reader or runtime raises on a damaged or foreign file is one line naming the file."""
    try:
        return getattr(target, what)(path)
    except FmnistError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise WeightsError(
            f"{path} is not a {target.name} export fmnist can read ({type(exc).__name__}: "
            f"{reason})",
            fix=f"export it again with `fmnist export --format {target.name}`",
        ) from None


class ExportedModel:
    """An export loaded by its runtime, with what ``fmnist serve`` asks of a ``Trainer``:
    ``logits(images, tta=)``, ``model``, ``backend.name`` and ``source_metadata``."""

    def __init__(self, path: str | os.PathLike, target: ExportTarget):
        reason = target.unavailable_reason()
        if reason:
            raise WeightsError(
                f"{path} is a {target.name} export; running it {reason}",
                fix=f"install {target.plugin}",
            )
        self.path, self.target = Path(path), target
        self.source_metadata = read_by(target, "read_metadata", self.path)
        if "fmnist_model" not in self.source_metadata:
            raise WeightsError(
                f"{path} carries no fmnist metadata", fix="export it with `fmnist export`"
            )
        self.model = architecture_of(
            Weights(
                self.source_metadata["fmnist_model"],
                {},
                {"architecture": self.source_metadata.get("fmnist_architecture", "")},
            )
        )
        self.backend = SimpleNamespace(name=f"{target.name} ({target.runtime})")
        try:
            recorded = json.loads(self.source_metadata.get("config", "{}"))
        except (ValueError, RecursionError):
            recorded = {}
        self.tta = bool(recorded.get("tta")) if isinstance(recorded, dict) else False
        self._run = read_by(target, "load", self.path)

    def logits(self, images: np.ndarray, *, tta: bool | None = None) -> np.ndarray:
        images = as_images(images, "images")
        logits = np.asarray(self._run(images), np.float32)
        if self.tta if tta is None else tta:
            logits = (logits + np.asarray(self._run(flipped(images)), np.float32)) / np.float32(2)
        return logits


def load_servable(path: str | os.PathLike, backend: str | None = None):
    """What ``fmnist serve`` serves: an export by its own runtime, else ``Trainer.load``."""
    target = exported_target(path) if backend is None else None
    if target is not None:
        return ExportedModel(path, target)
    from ..training.trainer import Trainer

    return Trainer.load(path, backend=backend, verbose=0)
