"""A run into a run folder, as ``fmnist train`` makes it: the settings from a config file and
flags resolved into a ``Trainer``; training with a checkpoint each epoch; then the evaluation,
weights, pictures and model card, all through ``RunFolder``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..spec.model import ModelSpec
from ..training.run_folder import RunFolder


def model_named(value: str) -> ModelSpec:
    """A registered model's name, or a JSON file of a ``ModelSpec`` (``ModelSpec.to_dict()``)."""
    from ..atomic import read_user_file
    from ..plugins import get_model

    if not value.endswith(".json"):
        return get_model(value)
    fix = "write it with json.dump(spec.to_dict(), file)"
    text = read_user_file(value, "the model file", fix=fix)
    try:
        return ModelSpec.from_dict(json.loads(text))
    except RecursionError:
        raise ConfigError(
            f"the model file {value} nests too deeply to be a model", fix=fix
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the model file {value} is not JSON: {exc}", fix=fix) from None


def registered(name: Any) -> bool:
    from ..plugins import models

    return isinstance(name, str) and name in models()


def resolve_model(settings: dict[str, Any], flag: str | None) -> ModelSpec:
    """The model of a config file (its name, or its recorded architecture) or of ``--model``."""
    architecture = settings.pop("architecture", None)
    if flag:
        return model_named(flag)
    if architecture and not registered(settings.get("model")):
        return ModelSpec.from_dict(architecture)
    return model_named(settings.get("model") or "mlp")


def recorded(trainer, log: str | None = None) -> dict[str, Any]:
    """What ``config.json`` holds: the trainer's record, the architecture of a model that is not
    a registered recipe, and the loggers; a config file for ``--config``."""
    config = trainer.recorded()
    if not registered(trainer.model.name) or trainer.model != model_named(trainer.model.name):
        config["architecture"] = trainer.model.to_dict()
    if log:
        config["log"] = log
    return config


def recorded_backend(folder: str) -> str | None:
    """The backend a run folder's ``config.json`` names: a resumed run launches its own. An
    unreadable ``config.json`` names none (the checkpoint records the backend too)."""
    try:
        name = RunFolder(folder).read_config().get("backend")
    except ConfigError:
        return None
    return name if isinstance(name, str) else None


def train_into(
    trainer, folder: RunFolder, *, log: str | None = None, pictures: bool = True
) -> dict[str, Any]:
    """Train (checkpointing each epoch), evaluate and save into ``folder``; the summary.
    Data-parallel, only rank 0 writes the folder."""
    from .model_card import write_model_card

    started = time.perf_counter()
    lead = trainer.rank == 0
    if lead:
        folder.write_config(recorded(trainer, log))
    history = trainer.fit(checkpoint_dir=folder.path)
    result = trainer.evaluate()
    weights = trainer.save(folder.weights)
    if not lead:
        return {}
    folder.write_config(recorded(trainer, log))  # with the device used
    folder.write_history(history)
    folder.write_evaluation(result.to_dict())
    drawn = draw_pictures(folder, trainer) if pictures else []
    card = write_model_card(folder, trainer, result, history, sum(history.column("seconds")))
    return {
        "run": str(folder.path),
        "backend": trainer.backend.name,
        "weights": str(weights),
        "pictures": [str(p) for p in drawn],
        "model_card": str(card),
        "test_loss": result.loss,
        "test_accuracy": result.accuracy,
        "epoch_seconds": history.column("seconds"),
        "wall_seconds": time.perf_counter() - started,
    }


def draw_pictures(folder: RunFolder, trainer) -> list[Path]:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print(
            "fmnist: note: no pictures drawn "
            '(matplotlib missing; pip install "fmnist-core[plots]")',
            file=sys.stderr,
        )
        return []
    from .plots import draw_run

    return draw_run(folder.path, trainer)
