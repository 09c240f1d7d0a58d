"""Metrics computed the same way for every backend: per-sample loss, accuracy, confusion matrix,
and the per-epoch ``History`` of a training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ..labels import LABELS, NUM_CLASSES


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (float64)."""
    return np.exp(log_softmax(logits))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy of integer ``labels`` under ``logits``."""
    labels = np.asarray(labels, dtype=np.int64)
    return -log_softmax(logits)[np.arange(len(labels)), labels]


def confusion_matrix(
    labels: np.ndarray, predicted: np.ndarray, classes: int = NUM_CLASSES
) -> np.ndarray:
    """``m[true, predicted]`` counts."""
    flat = np.asarray(labels, np.int64) * classes + np.asarray(predicted, np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


@dataclass(frozen=True)
class EvalResult:
    """Evaluation of a model on a labelled set: mean per-sample loss, accuracy and confusion."""

    loss: float
    accuracy: float
    confusion: np.ndarray
    count: int

    @classmethod
    def from_logits(cls, logits: np.ndarray, labels: np.ndarray) -> EvalResult:
        predicted = np.asarray(logits).argmax(axis=1)
        return cls(
            loss=float(cross_entropy(logits, labels).mean()),
            accuracy=float((predicted == np.asarray(labels)).mean()),
            confusion=confusion_matrix(labels, predicted),
            count=len(labels),
        )

    @property
    def per_class_accuracy(self) -> dict[str, float]:
        """Recall of each class, by label name."""
        totals = self.confusion.sum(axis=1)
        return {
            LABELS[i]: float(self.confusion[i, i] / totals[i]) if totals[i] else float("nan")
            for i in range(len(totals))
        }

    def to_dict(self) -> dict:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "count": self.count,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion.tolist(),
        }


def _bad(value: Any) -> Any:
    raise ValueError(f"a history row holds {str(value)[:40]!r} where a number belongs")


def _plain_numbers(record: Any) -> None:
    """Every NumPy scalar field as the plain Python number it is (``float``, ``int``)."""
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, np.generic):
            setattr(record, f.name, value.item())


@dataclass
class EpochRecord:
    """One epoch: mean per-sample training loss, accuracy, wall seconds, optional validation and
    test metrics, each a plain Python number. ``epoch`` counts from 0, as Keras'
    ``History.epoch`` does: the record of the line printed "Epoch 5" has ``epoch == 4``."""

    epoch: int
    loss: float
    accuracy: float
    seconds: float
    steps: int
    items: int
    test_loss: float | None = None
    test_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None

    def __post_init__(self) -> None:
        _plain_numbers(self)


@dataclass
class ProgressRecord:
    """A progress report inside an epoch (every ``log_every`` batches and at the epoch's end)."""

    epoch: int
    batch: int
    items: int
    loss: float  # mean per-sample loss since the epoch began
    accuracy: float  # running accuracy since the epoch began
    batch_loss: float  # the last batch's loss, as the article prints it

    def __post_init__(self) -> None:
        _plain_numbers(self)


@dataclass
class History:
    """Per-epoch records of a training run, and the progress reports within epochs."""

    epochs: list[EpochRecord] = field(default_factory=list)
    progress: list[ProgressRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, index: int) -> EpochRecord:
        return self.epochs[index]

    def column(self, name: str) -> list:
        """One metric across epochs, e.g. ``history.column("loss")``."""
        return [getattr(record, name) for record in self.epochs]

    def metrics(self) -> dict:
        """Everything but the timings: equal for two runs with the same seed."""
        timing = {"seconds"}
        return {
            "epochs": [
                {k: v for k, v in asdict(r).items() if k not in timing} for r in self.epochs
            ],
            "progress": [asdict(r) for r in self.progress],
        }

    def to_dict(self) -> dict:
        return {
            "epochs": [asdict(r) for r in self.epochs],
            "progress": [asdict(r) for r in self.progress],
        }

    @classmethod
    def from_dict(cls, data: dict) -> History:
        def number(value: Any, kind: str) -> Any:
            optional = kind.endswith("| None")
            if value is None and optional:
                return None
            if kind.startswith("int"):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
                return value if ok else _bad(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return _bad(value)
            return float(value)

        def build(kind, rows):
            if not isinstance(rows, list):
                raise ValueError(f"history rows must be a list, got {type(rows).__name__}")
            columns = {f.name: str(f.type) for f in fields(kind)}
            built = []
            for row in rows:
                if not isinstance(row, dict):
                    raise ValueError(f"a history row must be a table, got {str(row)[:40]!r}")
                values = {k: number(v, columns[k]) for k, v in row.items() if k in columns}
                built.append(kind(**values))
            return built

        if not isinstance(data, dict):
            raise ValueError("a history must be a table of epochs and progress")

        return cls(
            build(EpochRecord, data.get("epochs", [])),
            build(ProgressRecord, data.get("progress", [])),
        )
