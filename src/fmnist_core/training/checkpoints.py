"""What a saved trainer records, and reading it back: the weights file's metadata (backend,
versions, hyper-parameters, architecture, test accuracy) and the checkpoint of an interrupted
run (weights, the optimizer's slots as ``optimizer.{slot}.{param}``, the epoch, the history).

Every file is written atomically (``fmnist_core.atomic``): an interrupted write leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WeightsError
from ..io.formats import read_weights, write_weights
from ..io.weights import Weights
from .ema import PREFIX as EMA_PREFIX
from .metrics import History

if TYPE_CHECKING:
    from .trainer import Trainer

CHECKPOINT_NAME = "checkpoint.safetensors"
OPTIMIZER_PREFIX = "optimizer."

RECORDED = (
    "augment",
    "label_smoothing",
    "ema",
    "tta",
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "optimizer",
    "schedule",
    "init",
    "log_every",
    "steps_per_execution",
    "validation",
    "evaluate_each_epoch",
)
"""The ``Trainer`` arguments a weights file records and ``Trainer.load``/``resume`` restore."""


RUN_WEIGHTS = "weights.safetensors"


def weights_in(path: str | os.PathLike) -> Path:
    """``path`` itself, or the weights of the run folder ``path`` (``fmnist train``'s)."""
    path = Path(path)
    if path.is_dir() and (path / RUN_WEIGHTS).is_file() and not (path / "saved_model.pb").exists():
        return path / RUN_WEIGHTS
    return path


def weights_of(trainer: Trainer, params: dict | None = None) -> Weights:
    """The trainer's evaluated weights (or ``params``) with the metadata every weights file
    carries."""
    versions = {"fmnist-core": package_version("fmnist-core"), **trainer.backend.versions()}
    metadata = {
        "backend": trainer.backend.name,
        "versions": json.dumps(versions),
        "config": json.dumps(trainer.config()),
        "epochs_done": str(trainer.epochs_done),
        "architecture": json.dumps(trainer.model.to_dict()),
    }
    accuracy = (
        trainer.test_accuracy
        if trainer.test_accuracy is not None
        else trainer.source_metadata.get("test_accuracy")
    )
    if accuracy is not None:
        metadata["test_accuracy"] = str(accuracy)
    return Weights(
        trainer.model.name, trainer.evaluated_params() if params is None else params, metadata
    )


def recorded_config(weights: Weights) -> dict[str, Any]:
    """The hyper-parameters a weights file records (``{}`` when it records none)."""
    try:
        config = json.loads(weights.metadata.get("config", "{}"))
    except (json.JSONDecodeError, RecursionError):
        return {}
    return config if isinstance(config, dict) else {}


def recorded_arguments(config: dict[str, Any], with_options: bool) -> dict[str, Any]:
    """``Trainer`` keyword arguments from a recorded config (its backend options too when the
    same backend is used)."""
    kwargs = {k: config[k] for k in RECORDED if k in config}
    options = config.get("options", {})
    if with_options and isinstance(options, dict):
        kwargs.update(options)
    return kwargs


def write_checkpoint(trainer: Trainer, folder: str | os.PathLike) -> Path:
    """The training weights, optimizer state, the average of the weights, epoch and history into
    ``folder`` atomically (rank 0 only)."""
    weights = weights_of(trainer, trainer.engine.get_params())
    for name, array in trainer.engine.optimizer_state().items():
        weights.params[f"{OPTIMIZER_PREFIX}{name}"] = array
    if trainer.weight_average is not None:
        weights.params.update(trainer.weight_average.state())
    weights.metadata["history"] = json.dumps(trainer.history.to_dict())
    path = Path(folder) / CHECKPOINT_NAME
    if trainer.rank == 0:
        write_weights(path, weights, "safetensors")
    return path


def read_checkpoint(folder: str | os.PathLike) -> tuple[Weights, dict, dict, History, int]:
    """(weights, optimizer state, the average's state, history, epochs done) of the run
    checkpointed in ``folder``."""
    path = Path(folder) / CHECKPOINT_NAME
    if not path.exists():
        raise WeightsError(
            f"{folder} holds no {CHECKPOINT_NAME}",
            fix="pass a run folder written by `fmnist train` or fit(checkpoint_dir=...)",
        )
    weights = read_weights(path, "safetensors")
    optimizer = {
        k[len(OPTIMIZER_PREFIX) :]: v
        for k, v in weights.params.items()
        if k.startswith(OPTIMIZER_PREFIX)
    }
    average = {k: v for k, v in weights.params.items() if k.startswith(EMA_PREFIX)}
    weights.params = {
        k: v
        for k, v in weights.params.items()
        if not k.startswith(OPTIMIZER_PREFIX) and not k.startswith(EMA_PREFIX)
    }
    try:
        history = History.from_dict(json.loads(weights.metadata.get("history", "{}")))
        epochs_done = int(weights.metadata.get("epochs_done", 0))
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise WeightsError(
            f"{path} records a history or epoch count fmnist cannot read",
            fix="start the run again, or resume from an intact checkpoint",
        ) from None
    return weights, optimizer, average, history, epochs_done


def package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
