"""Training, written once: the ``Trainer`` facade, the loop, checkpoints, callbacks, metrics and
tracking loggers."""

from .callbacks import Callback, EarlyStopping, ModelCheckpoint, PrintProgress, ProgressBar
from .metrics import EpochRecord, EvalResult, History, ProgressRecord
from .trainer import Prediction, Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochRecord",
    "EvalResult",
    "History",
    "ModelCheckpoint",
    "Prediction",
    "PrintProgress",
    "ProgressBar",
    "ProgressRecord",
    "Trainer",
]
