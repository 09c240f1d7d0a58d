"""An export (``fmnist export``) served by its own runtime: ``fmnist serve model.int8.onnx``,
``model.pt2`` or ``model.tflite`` answers with the artifact itself, not weights rebuilt in a
training framework. A plain ``.onnx`` is served as before, by the onnx backend."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..data.arrays import as_images
from ..engine.backend import chunked_logits
from ..errors import FmnistError, WeightsError
from ..io.exports import EXPORT_KEY, GATE_KEY, ExportTarget
from ..io.weights import Weights, architecture_of
from ..plugins import export_targets


def exported_target(path: str | os.PathLike) -> ExportTarget | None:
    """The export target ``path`` was written by, when it is one run by its own runtime: by its
    marker (a folder fmnist wrote whole, the web page), its suffix, or its metadata (an int8
    ONNX under any name). None for weights, which ``Trainer.load`` reads."""
    from ..atomic import written_kind

    path = Path(path)
    if path.is_dir():
        kind = written_kind(path) or ""
        folders = {f"export {t.name}": t for t in export_targets().values()}
        return folders.get(kind)
    if not path.is_file():
        return None
    from ..plugins import weight_formats

    registered = export_targets()
    formats = weight_formats()
    targets = [t for t in registered.values() if not t.suffix.endswith("/")]
    for target in sorted(targets, key=lambda t: len(t.suffix), reverse=True):
        if not path.name.endswith(target.suffix):
            continue
        if target.name not in formats:
            return target
        # the target's files are weights files too (onnx: Trainer.load reads them); another
        # target's export under that suffix (an int8 file named .onnx) says so in its metadata
        if target.unavailable_reason() is not None:
            return None
        other = registered.get(str(read_by(target, "read_metadata", path).get(EXPORT_KEY)))
        return other if other is not None and other.name not in formats else None
    from ..io.formats import format_for

    try:
        format_for(path)
        return None  # weights: a format claims it by its name or content
    except WeightsError:
        pass
    for target in targets:  # a name of the user's choosing: the export's own metadata says
        if target.unavailable_reason() is not None:
            continue
        try:
            if target.read_metadata(path).get(EXPORT_KEY) == target.name:
                return target
        except Exception:  # not this target's format
            continue
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
        """Logits of uint8 images (n, 28, 28), run by the artifact's runtime in chunks; ``tta``
        (default: the recorded recipe's) averages them with the mirror images'."""
        from ..training.export import CHUNK

        images = as_images(images, "images")
        return chunked_logits(self._run, images, self.tta if tta is None else tta, CHUNK)

    def evaluate(self, split: str = "test", *, tta: bool | None = None, data_dir=None,
                 verify_checksums: bool = True):  # fmt: skip
        """Loss, accuracy and confusion matrix on a split of the real data, as
        ``Trainer.evaluate`` gives them, computed by the artifact's own runtime."""
        from ..training.metrics import EvalResult
        from ..training.run_data import RunData

        data = RunData(None, data_dir, verify_checksums, None).split(split)
        return EvalResult.from_logits(self.logits(data.images, tta=tta), data.labels)

    def predict(self, inputs, output: str = "labels", *, on_error: str = "raise",
                max_pixels: int | None = None, tta: bool | None = None) -> list:  # fmt: skip
        """As ``Trainer.predict``: image files, folders or a uint8 array, by the runtime."""
        from ..training.predict import predict

        return predict(lambda images: self.logits(images, tta=tta), inputs, output, on_error,
                       max_pixels)  # fmt: skip


def recorded_gate(model) -> dict:
    """The scores an export gate recorded in the file ``model`` was opened from (an
    ``ExportedModel``, or a ``Trainer`` loaded from an ONNX export); ``{}`` if none."""
    metadata = getattr(model, "source_metadata", {}) or {}
    try:
        recorded = json.loads(metadata.get(GATE_KEY, "{}"))
    except (ValueError, RecursionError, TypeError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def open_model(path: str | os.PathLike, backend: str | None = None, **load: Any):
    """Any file fmnist writes, ready for inference (``logits``, ``predict``, ``evaluate``): an
    export run by its own runtime (``ExportedModel``), else weights or a run folder through
    ``Trainer.load(path, backend, **load)``. ``fmnist serve``, ``evaluate`` and ``predict`` open
    what they are given with it."""
    target = exported_target(path) if backend is None else None
    if target is not None:
        return ExportedModel(path, target)
    from ..training.trainer import Trainer

    return Trainer.load(path, backend=backend, **{"verbose": 0, **load})
