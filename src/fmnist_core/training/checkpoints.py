"""What a saved trainer records, and reading it back: the weights file's metadata (backend,
versions, settings, architecture, test accuracy) and the checkpoint of an interrupted run
(weights, the optimizer's slots as ``optimizer.{slot}.{param}``, the ``RunState``: epochs done,
history, the average of the weights as ``ema.{name}``).

Every file is written atomically (``fmnist_core.atomic``): an interrupted write leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import plugins
from ..errors import ConfigError, WeightsError
from ..io.formats import read_weights, write_weights
from ..io.weights import Weights, architecture_of
from . import config as settings
from .ema import PREFIX as EMA_PREFIX
from .ema import WeightAverage
from .metrics import History
from .run_folder import RunFolder

OPTIMIZER_PREFIX = "optimizer."

__all__ = ["RunFolder", "load", "read_checkpoint", "resume", "weights_of", "write_checkpoint"]


def weights_in(path: str | os.PathLike) -> Path:
    """``path`` itself, or the weights of the run folder ``path`` (``fmnist train``'s)."""
    return RunFolder(path).weights if RunFolder.holds_run(path) else Path(path)


def _source_epochs(trainer: Any) -> int:
    """The epochs recorded in the file a loaded (not yet trained) trainer came from."""
    text = str(trainer.source_metadata.get("epochs_done", "0"))
    return int(text) if text.isdigit() and len(text) < 10 else 0


def weights_of(trainer: Any, params: dict | None = None) -> Weights:
    """The trainer's evaluated weights (or ``params``) with the metadata every weights file
    carries."""
    versions = {"fmnist-core": package_version("fmnist-core"), **trainer.backend.versions()}
    metadata = {
        "backend": trainer.backend.name,
        "versions": json.dumps(versions),
        "config": json.dumps(trainer.recorded()),
        "epochs_done": str(trainer.state.epochs_done or _source_epochs(trainer)),
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


def recorded(trainer: Any) -> dict[str, Any]:
    """``Trainer.recorded``: the settings, backend, model, data, workers, options, device."""
    digest = trainer.run_data.arrays_digest
    options = trainer._given_options.items()
    return {
        "backend": trainer.backend.name,
        "model": trainer.model.name,
        **trainer.config.to_dict(),
        "data": {"arrays": digest} if digest else "fashion-mnist",
        "workers": trainer.world_size,
        "options": {k: v for k, v in options if isinstance(v, (str, int, float))},
        **({"device": trainer.engine.device} if trainer._engine is not None else {}),
    }


def recorded_config(weights: Weights) -> dict[str, Any]:
    """What a weights file records (``{}`` when it records nothing readable)."""
    try:
        config = json.loads(weights.metadata.get("config", "{}"))
    except (json.JSONDecodeError, RecursionError):
        return {}
    return config if isinstance(config, dict) else {}


def recorded_arguments(config: dict[str, Any], with_options: bool) -> dict[str, Any]:
    """``Trainer`` keyword arguments from a recorded config: its settings (checked), and its
    backend options when the same backend is used."""
    kwargs = {k: config[k] for k in settings.RECORDED if k in config}
    if not with_options:  # arithmetic, not the weights (float32): another backend uses its own
        kwargs.pop("precision", None)
    options = config.get("options", {})
    if with_options and isinstance(options, dict):
        settings.check_options(options, "the recorded options")
        kwargs.update(options)
    return kwargs


def write_checkpoint(trainer: Any, folder: str | os.PathLike) -> Path:
    """The training weights, optimizer state, the average of the weights, epoch and history into
    ``folder`` atomically (rank 0 only)."""
    weights = weights_of(trainer, trainer.engine.get_params())
    for name, array in trainer.engine.optimizer_state().items():
        weights.params[f"{OPTIMIZER_PREFIX}{name}"] = array
    if trainer.state.weight_average is not None:
        weights.params.update(trainer.state.weight_average.state())
    weights.metadata["history"] = json.dumps(trainer.state.history.to_dict())
    path = RunFolder(folder).checkpoint
    if trainer.rank == 0:
        write_weights(path, weights, "safetensors")
    return path


def read_checkpoint(folder: str | os.PathLike) -> tuple[Weights, dict, dict, History, int]:
    """(weights, optimizer state, the average's state, history, epochs done) of the run
    checkpointed in ``folder``."""
    path = RunFolder(folder).checkpoint
    if not path.exists():
        raise WeightsError(
            f"{folder} holds no {RunFolder.CHECKPOINT}",
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
        if epochs_done < 0 or epochs_done != len(history.epochs):
            raise ValueError(epochs_done)
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
        raise WeightsError(
            f"{path} records a history or epoch count fmnist cannot read",
            fix="start the run again, or resume from an intact checkpoint",
        ) from None
    return weights, optimizer, average, history, epochs_done


def load(cls: Any, path, backend: str | None, format: str | None, overrides: dict) -> Any:
    """``Trainer.load``."""
    path = weights_in(path)
    weights = read_weights(path, format)
    config = recorded_config(weights)
    if backend is None:
        recorded = config.get("backend") or weights.metadata.get("backend")
        usable = plugins.backends()
        if recorded in usable and usable[recorded].unavailable_reason() is None:
            backend = recorded
    same = backend in (None, config.get("backend"))
    trainer = _from_weights(cls, weights, backend, config, str(path), same, overrides)
    trainer.source_metadata = dict(weights.metadata)
    return trainer


def resume(cls: Any, folder: str | os.PathLike, overrides: dict) -> Any:
    """``Trainer.resume``."""
    weights, optimizer, average, history, epochs_done = read_checkpoint(folder)
    config = recorded_config(weights)
    trainer = _from_weights(
        cls, weights, config.get("backend"), config, str(folder), True, overrides
    )
    trainer.state.history, trainer.state.epochs_done = history, epochs_done
    recorded = config.get("data")
    digest = recorded.get("arrays", "") if isinstance(recorded, dict) else ""
    trainer.run_data.arrays_digest = digest
    if optimizer:
        trainer.engine.set_optimizer_state(optimizer)
    if average and trainer.config.ema:
        trainer.state.weight_average = WeightAverage(trainer.config.ema, weights.params)
        trainer.state.weight_average.load(average)
    return trainer


def _from_weights(cls, weights, backend, config, source, with_options, overrides) -> Any:
    kwargs = {**recorded_arguments(config, with_options), **overrides}
    try:
        trainer = cls(backend=backend, model=architecture_of(weights), **kwargs)
    except ConfigError as exc:
        raise ConfigError(
            f"{source} records settings fmnist cannot use: {exc.message}",
            fix="train it again, or pass the setting to load()/resume() to override it",
        ) from None
    trainer.set_params(trainer.model.check_params(weights.params, source=source))
    return trainer


def package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
