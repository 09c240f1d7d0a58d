"""``Trainer.export``: write a deployable artifact, run it with its own runtime on the whole test
set beside the source model, and keep it only if it behaves like the source (the gate).

Float targets must give the same top-1 class on at least 99.9% of the test images and
probabilities within 1e-4 of the source's; quantised ones must keep the test accuracy within 0.5
point. The scores go into the artifact's metadata (``fmnist_gate``). An export that fails is
removed and refused with a one-line error naming the numbers; ``gate=False`` keeps it, marked as
not enforced, with its scores.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import (
    check_replaceable,
    move_into_place,
    remove_staged,
    staged_file,
    staged_folder,
)
from ..engine.backend import chunked_logits
from ..errors import ExportError, FmnistError
from ..io.exports import GATE_KEY, ExportTarget, export_metadata
from ..plugins import get_export_target
from .checkpoints import weights_of
from .metrics import softmax

MIN_AGREEMENT = 0.999
"""Float targets: the share of test images whose top-1 class must equal the source's."""
MAX_PROBABILITY_DIFFERENCE = 1e-4
"""Float targets: the largest difference allowed between any probability and the source's."""
MAX_ACCURACY_DROP = 0.005
"""Quantised targets: the most test accuracy they may lose (0.5 point)."""
CALIBRATION_IMAGES = 512
"""Training images (never the test set) a quantising target calibrates on."""
CHUNK = 1000


@dataclass(frozen=True)
class GateResult:
    """How the artifact, run by its own runtime, compares with the source on the test set."""

    target: str
    images: int
    agreement: float
    max_probability_difference: float
    source_accuracy: float
    export_accuracy: float
    quantized: bool
    enforced: bool = True

    @property
    def accuracy_change(self) -> float:
        return self.export_accuracy - self.source_accuracy

    @property
    def passed(self) -> bool:
        if self.quantized:
            return self.accuracy_change >= -MAX_ACCURACY_DROP
        return (
            self.agreement >= MIN_AGREEMENT
            and self.max_probability_difference <= MAX_PROBABILITY_DIFFERENCE
        )

    @property
    def rule(self) -> str:
        if self.quantized:
            return f"test accuracy within {MAX_ACCURACY_DROP * 100:g} point of the source"
        return (
            f"same top-1 on ≥ {MIN_AGREEMENT:.1%} of test images, probabilities within "
            f"{MAX_PROBABILITY_DIFFERENCE:g}"
        )

    def summary(self) -> str:
        """One line: the numbers and the verdict."""
        verdict = "passed" if self.passed else "FAILED"
        if not self.enforced:
            verdict += " (not enforced: --no-gate)"
        return (
            f"gate {verdict}: same top-1 on {self.agreement:.2%} of {self.images:,} test images, "
            f"largest probability difference {self.max_probability_difference:.2g}, test "
            f"accuracy {self.source_accuracy:.4f} → {self.export_accuracy:.4f} "
            f"({self.accuracy_change * 100:+.2f} points); rule: {self.rule}"
        )

    def to_json(self) -> str:
        return json.dumps(
            {**asdict(self), "passed": self.passed, "rule": self.rule}, ensure_ascii=False
        )


@dataclass(frozen=True)
class ExportResult:
    """What ``Trainer.export`` wrote and how it compared with the source."""

    path: Path
    target: str
    size_bytes: int
    gate: GateResult

    def __fspath__(self) -> str:
        return str(self.path)


def compare(
    target: ExportTarget,
    source_logits: np.ndarray,
    export_logits: np.ndarray,
    labels: np.ndarray,
    enforced: bool = True,
) -> GateResult:
    """The gate's scores of ``export_logits`` against ``source_logits``."""
    if export_logits.shape != source_logits.shape:
        raise ExportError(
            f"the {target.name} export gives logits of shape {export_logits.shape}, the source "
            f"{source_logits.shape}",
            fix="report this: the target's writer and runner disagree",
        )
    source_top, export_top = source_logits.argmax(1), export_logits.argmax(1)
    difference = np.abs(softmax(export_logits) - softmax(source_logits)).max()
    return GateResult(
        target=target.name,
        images=len(labels),
        agreement=float((source_top == export_top).mean()),
        max_probability_difference=float(difference) if np.isfinite(difference) else 1.0,
        source_accuracy=float((source_top == labels).mean()),
        export_accuracy=float((export_top == labels).mean()),
        quantized=target.quantized,
        enforced=enforced,
    )


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_trainer(trainer: Any, path: str | os.PathLike, format: str, gate: bool = True):
    """Write ``trainer``'s evaluated weights as ``format`` at ``path``, gated (module docstring)."""
    target = get_export_target(format)
    path = Path(path)
    weights = weights_of(trainer)
    test = trainer.run_data.split("test")
    calibration = np.empty((0, *trainer.model.input_shape), np.uint8)
    if target.quantized:
        train = trainer.splits()[0]
        picked = np.random.default_rng(0).permutation(len(train.images))[:CALIBRATION_IMAGES]
        calibration = np.ascontiguousarray(train.images[np.sort(picked)])
    folder = target.suffix.endswith("/")
    kind = f"export {target.name}" if folder else None
    check_replaceable(path, kind)  # before anything is written: never the user's files
    staged = staged_folder(path, kind) if kind else staged_file(path, target.suffix)
    try:
        try:
            target.write(staged, weights, export_metadata(weights, target.name), calibration)
            export_logits = chunked_logits(target.load(staged), test.images, chunk=CHUNK)
        except FmnistError:
            raise
        except Exception as exc:  # a runtime's own error, e.g. an op it cannot run
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ExportError(
                f"the {target.name} export of {trainer.model.name!r} could not be written or run "
                f"by {target.runtime} ({type(exc).__name__}: {reason})",
                fix="try another --format; the other targets do not depend on this runtime",
            ) from exc
        source_logits = trainer.logits(test.images, tta=False)
        result = compare(target, source_logits, export_logits, test.labels, enforced=gate)
        if gate and not result.passed:
            raise ExportError(
                f"{path.name}: the {target.name} export was refused, {result.summary()}",
                fix="--no-gate keeps it, marked as failed",
            )
        target.stamp(staged, {**target.read_metadata(staged), GATE_KEY: result.to_json()})
        move_into_place(staged, path, kind)
    finally:
        remove_staged(staged)
    return ExportResult(path, target.name, _size(path), result)
