"""Callbacks, as in Keras: objects whose methods the ``Trainer`` calls as training goes on.

Built in: ``ProgressBar`` (tqdm), ``PrintProgress`` (the article's lines), ``EarlyStopping``
and ``ModelCheckpoint``. Set ``trainer.stop_training = True`` to end training after the epoch.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from .metrics import EpochRecord, History, ProgressRecord

Trainer = Any  # the owner of the loop: a Trainer, or the Loop itself (no import: a cycle)


class Callback:
    """Base class; override the methods you need."""

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None: ...

    def on_progress(self, trainer: Trainer, record: ProgressRecord, batches: int) -> None:
        """After every ``log_every`` batches and the epoch's last; ``batches`` per epoch."""

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None: ...

    def on_train_end(self, trainer: Trainer, history: History) -> None: ...


class PrintProgress(Callback):
    """Prints the article's lines: ``[Batch 100 - 6400 items] accuracy: 70.1%, loss: 0.6``."""

    def __init__(self, stream=None):
        self.stream = stream

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def on_epoch_begin(self, trainer, epoch):
        self._print(f"\nEpoch {epoch + 1}\n-------------------------------")

    def on_progress(self, trainer, record, batches):
        self._print(
            f"[Batch {record.batch:>3d} - {record.items:>5d} items] "
            f"accuracy: {record.accuracy * 100:>0.1f}%, loss: {record.batch_loss:>7f}"
        )

    def on_epoch_end(self, trainer, record):
        extra = ""
        if record.val_accuracy is not None:
            extra += (
                f", val accuracy: {record.val_accuracy * 100:.1f}%, val loss: {record.val_loss:.4f}"
            )
        if record.test_accuracy is not None:
            extra += (
                f", test accuracy: {record.test_accuracy * 100:.1f}%, "
                f"test loss: {record.test_loss:.4f}"
            )
        self._print(
            f"Epoch {record.epoch + 1}: loss {record.loss:.4f}, accuracy "
            f"{record.accuracy * 100:.1f}%, "
            f"{record.seconds:.2f} s{extra}"
        )


class ProgressBar(Callback):
    """A tqdm bar per epoch, with running loss and accuracy."""

    def __init__(self):
        self.bar = None

    def on_epoch_begin(self, trainer, epoch):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=None,
            desc=f"Epoch {epoch + 1}/{trainer.epochs}",
            unit="batch",
            leave=True,
            file=sys.stderr,
        )
        self._done = 0

    def on_progress(self, trainer, record, batches):
        if self.bar.total is None:
            self.bar.total = batches
        self.bar.update(record.batch - self._done)
        self._done = record.batch
        self.bar.set_postfix(loss=f"{record.loss:.4f}", accuracy=f"{record.accuracy:.3f}")

    def on_epoch_end(self, trainer, record):
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{record.loss:.4f}",
                accuracy=f"{record.accuracy:.3f}",
                seconds=f"{record.seconds:.2f}",
            )
            self.bar.close()
            self.bar = None


class EarlyStopping(Callback):
    """Stop when ``monitor`` (an ``EpochRecord`` field) stops improving for ``patience`` epochs."""

    def __init__(
        self, monitor: str = "loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto"
    ):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.sign = -1.0 if mode == "max" or (mode == "auto" and "accuracy" in monitor) else 1.0
        self.best = math.inf
        self.wait = 0

    def on_epoch_end(self, trainer, record):
        value = getattr(record, self.monitor)
        if value is None:
            return
        value = self.sign * value
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.patience:
                trainer.stop_training = True


class ModelCheckpoint(Callback):
    """Save the weights after each epoch (``{epoch}`` in the path is filled in), or the best."""

    def __init__(self, path: str | Path, monitor: str = "loss", save_best_only: bool = False):
        self.path, self.monitor, self.save_best_only = str(path), monitor, save_best_only
        self.sign = -1.0 if "accuracy" in monitor else 1.0
        self.best = math.inf

    def on_epoch_end(self, trainer, record):
        value = getattr(record, self.monitor)
        if self.save_best_only:
            if value is None or self.sign * value >= self.best:
                return
            self.best = self.sign * value
        trainer.save(self.path.format(epoch=record.epoch + 1))


def progress_callbacks(verbose: int | str) -> list[Callback]:
    """``verbose``: 0 nothing, 1 a progress bar, 2 the article's lines, "auto" a bar on a
    terminal and lines otherwise."""
    if verbose == "auto":
        verbose = 1 if sys.stderr.isatty() else 2
    shown: dict[int, list[Callback]] = {1: [ProgressBar()], 2: [PrintProgress()]}
    return shown.get(int(verbose), [])
