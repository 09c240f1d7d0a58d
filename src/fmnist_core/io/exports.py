"""Export targets: deployable artifacts written from weights, each run by its own runtime.

A target writes one file or folder from ``Weights`` (``write``), runs it with the runtime that
format is made for (``load``: uint8 images (n, 28, 28) → float32 logits (n, classes)), and keeps
fmnist's metadata in it (``read_metadata``; ``stamp`` adds the gate's scores after the artifact
was checked). ``fmnist export`` gates every artifact on the test set before keeping it
(``fmnist_core.training.export``); plugins add targets through the ``fmnist_export_targets``
hook.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import LABELS
from .weights import Weights, architecture_of

Runner = Callable[[np.ndarray], np.ndarray]
"""An artifact loaded by its own runtime: uint8 images (n, 28, 28) → float32 logits (n, 10)."""

EXPORT_KEY = "fmnist_export"
GATE_KEY = "fmnist_gate"
KEPT = ("backend", "config", "versions", "epochs_done", "test_accuracy")


@dataclass(frozen=True)
class ExportTarget:
    """A kind of deployable artifact (``fmnist export --format NAME``).

    ``write(path, weights, metadata, calibration)`` writes it at ``path`` with ``metadata``
    (strings) inside, ``calibration`` being training images (uint8, n × 28 × 28) for targets that
    quantise; ``load(path)`` returns a ``Runner`` built with the target's own runtime;
    ``read_metadata(path)`` gives the metadata back; ``stamp(path, metadata)`` replaces it.
    ``suffix`` ends the default name (``/`` for a folder); ``quantized`` targets are gated on
    accuracy, float ones on agreement with the source.
    """

    name: str
    description: str
    suffix: str
    runtime: str
    write: Callable[[Path, Weights, dict[str, str], np.ndarray], None]
    load: Callable[[Path], Runner]
    read_metadata: Callable[[Path], dict[str, str]]
    stamp: Callable[[Path, dict[str, str]], None]
    quantized: bool = False
    plugin: str = ""
    requires: tuple[str, ...] = ()  # modules it needs (checked without importing them)

    def unavailable_reason(self) -> str | None:
        """None when usable; otherwise the missing modules."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        return f"needs {', '.join(missing)}" if missing else None

    def default_path(self, folder: Path, stem: str = "model") -> Path:
        """Where ``fmnist export`` writes it when no ``--out`` is given."""
        if self.suffix.endswith("/"):
            return folder / (self.suffix.rstrip("/") or self.name)
        return folder / f"{stem}{self.suffix}"


def export_metadata(weights: Weights, target: str) -> dict[str, str]:
    """What every export carries: the model's name and architecture, the labels, the target,
    and the source file's record (backend, config, versions, epochs, test accuracy)."""
    spec = architecture_of(weights)
    return {
        "fmnist_model": spec.name,
        "fmnist_architecture": json.dumps(spec.to_dict()),
        "labels": json.dumps(list(LABELS)),
        EXPORT_KEY: target,
        **{k: str(v) for k, v in weights.metadata.items() if k in KEPT},
    }
