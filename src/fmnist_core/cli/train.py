"""``fmnist train``: train, evaluate and save a model into a run folder (config, history,
evaluation, weights, checkpoint, pictures); ``--resume`` continues one, ``--workers N`` trains
data-parallel."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from ..training.checkpoints import RECORDED
from .common import (
    EXIT_ERROR,
    Deprecated,
    backend_options,
    checksum_flags,
    count_or_fraction,
    print_json,
)


def add_arguments(p) -> None:
    from ..spec.optimizers import OPTIMIZERS, SCHEDULES

    p.add_argument("--backend", help="backend name (default: best installed)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML or JSON file of Trainer arguments, backend options (options) and loggers "
        "(log); "
        "a run folder's config.json is one; flags given here override it",
    )
    p.add_argument(
        "--model",
        default=None,
        help="a recipe from `fmnist models` (default mlp, the article's), "
        "or a JSON file of your own ModelSpec (its to_dict(); the mlp's recipe applies)",
    )
    p.add_argument("--epochs", type=int, default=None, help="default: the model's recipe (mlp: 5)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (mlp: 64)")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="(peak) learning rate; default: the recipe's (mlp: 0.1)",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default: the recipe's (mlp: sgd)")
    p.add_argument("--momentum", type=float, help="SGD momentum")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    p.add_argument(
        "--weight-decay", type=float, help="L2 (sgd, adam) or decoupled (adamw) weight decay"
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning-rate schedule; default: the recipe's (mlp: constant)",
    )
    p.add_argument(
        "--steps-per-execution", type=int, default=None, help="steps per engine call (default 100)"
    )
    p.add_argument(
        "--log-every", type=int, default=None, help="progress every N batches (default 100)"
    )
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-parallel processes on this machine (torch: torchrun, gloo on the CPU; tf and "
        "keras: MultiWorkerMirroredStrategy with a TF_CONFIG per worker)",
    )
    p.add_argument("--data-dir")
    p.add_argument("--device", help="backend device, e.g. cpu, cuda, auto")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="backend option")
    p.add_argument("--out", help="run folder (default runs/<timestamp>)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder")
    p.add_argument(
        "--evaluate-each-epoch", action="store_true", help="evaluate on the test set every epoch"
    )
    p.add_argument(
        "--validation",
        type=count_or_fraction,
        default=None,
        metavar="N",
        help="hold out N training images (or a fraction, 0.1) as a validation split, reported each "
        "epoch",
    )
    p.add_argument(
        "--augment",
        metavar="LIST",
        help="training-time augmentation, e.g. flip,translate:2,erase:0.5 (or none); default: the "
        "recipe's",
    )
    p.add_argument(
        "--max-memory-gb",
        type=float,
        default=None,
        help="refuse a model that would need more memory to train (default 8)",
    )
    p.add_argument("--label-smoothing", type=float, metavar="E", help="default: the recipe's")
    p.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="evaluate and save an average of the weights "
        "(e.g. 0.999; 0: off); default: the recipe's",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="evaluate on each image and its mirror image; default: the recipe's",
    )
    p.add_argument(
        "--validate",
        dest="evaluate_each_epoch",
        action=Deprecated,
        nargs=0,
        help="deprecated: --evaluate-each-epoch",
    )
    checksum_flags(p)
    p.add_argument("--no-plots", action="store_true", help="draw no pictures into the run folder")
    p.add_argument(
        "--log",
        metavar="LOGGERS",
        help="track the run: csv, tensorboard, mlflow (comma-separated; into the run folder)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from .. import plugins
    from ..atomic import folder_lock

    settings = {} if args.resume else training_settings(args)
    name = _recorded_backend(args.resume) if args.resume else settings.get("backend")
    backend = plugins.get_backend(args.backend or name)
    workers = args.workers or settings.get("workers") or 1
    if workers > 1 and backend.worker_rank()[1] == 1:  # not yet inside a launched worker
        return _launch_workers(args, backend, workers)
    trainer, run_folder = _trainer(args, settings)
    lead = trainer.rank == 0  # data-parallel: only rank 0 writes the run folder and prints
    with folder_lock(run_folder) if lead else contextlib.nullcontext():
        return _train(args, trainer, run_folder, lead)


def _train(args, trainer, run_folder: Path, lead: bool) -> int:
    from ..atomic import atomic_write_json

    started = time.perf_counter()
    if lead:
        atomic_write_json(run_folder / "config.json", _recorded(args, trainer))
    history = trainer.fit(checkpoint_dir=run_folder)
    result = trainer.evaluate()
    weights = trainer.save(run_folder / "weights.safetensors")
    if not lead:
        return 0
    atomic_write_json(run_folder / "config.json", _recorded(args, trainer))  # with the device used
    atomic_write_json(run_folder / "history.json", history.to_dict())
    atomic_write_json(run_folder / "evaluation.json", result.to_dict())
    pictures = _draw_pictures(run_folder, trainer) if not args.no_plots else []
    from ..apps.model_card import write_model_card

    card = write_model_card(run_folder, trainer, result, history, sum(history.column("seconds")))
    summary = {
        "run": str(run_folder),
        "backend": trainer.backend.name,
        "weights": str(weights),
        "pictures": [str(p) for p in pictures],
        "model_card": str(card),
        "test_loss": result.loss,
        "test_accuracy": result.accuracy,
        "epoch_seconds": history.column("seconds"),
        "wall_seconds": time.perf_counter() - started,
    }
    if args.json:
        print_json(summary)
    else:
        print(f"\nTest accuracy: {result.accuracy * 100:>0.1f}%, test loss: {result.loss:>8f}")
        print(f"Saved {weights} (run folder {run_folder})")
    return 0


def _trainer(args, settings: dict):
    from ..training.tracking import loggers_for
    from ..training.trainer import Trainer

    verbose = 0 if (args.json or args.quiet) else "auto"
    if args.resume:
        run_folder = Path(args.resume)
        trainer = Trainer.resume(run_folder, verbose=verbose, data_dir=args.data_dir)
        if args.epochs:
            trainer.epochs = args.epochs
        if args.log:
            trainer.callbacks += loggers_for(args.log, run_folder)
        return trainer, run_folder
    run_folder = Path(args.out) if args.out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    settings = dict(settings)
    settings.pop("workers", None)
    log, options = settings.pop("log", None), settings.pop("options", {})
    trainer = Trainer(
        **settings,
        callbacks=loggers_for(log, run_folder) if log else (),
        data_dir=args.data_dir,
        verbose=verbose,
        verify_checksums=not args.skip_checksums,
        **options,
    )
    return trainer, run_folder


#: the keys of a config file: the Trainer arguments a weights file records, and the model,
#: backend, backend options, loggers, workers and memory limit
CONFIG_KEYS = (
    "backend",
    "model",
    "architecture",
    *RECORDED,
    "max_memory_gb",
    "options",
    "log",
    "workers",
)
RECORDED_ONLY = ("device", "data")  # config.json records them; they are results, not settings


def read_config(path: str) -> dict:
    """A config file (TOML or JSON, by its suffix) as a dict, its keys checked."""
    import difflib

    from ..errors import ConfigError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the config file {path}: {exc}", fix="give a TOML or JSON file"
        ) from None
    try:
        if path.endswith(".toml"):
            import tomllib

            config = tomllib.loads(text)
        else:
            config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(
            f"the config file {path} is not valid {'TOML' if path.endswith('.toml') else 'JSON'}: "
            f"{str(exc)[:120]}",
            fix="fix its syntax",
        ) from None
    if not isinstance(config, dict):
        raise ConfigError(
            f"the config file {path} holds a {type(config).__name__}, not a table of settings"
        )
    data = config.get("data")
    if isinstance(data, dict) and data.get("arrays"):
        raise ConfigError(
            f"the run of {path} trained on arrays, which a config file cannot hold",
            fix="train it from Python: Trainer(...).fit(x, y)",
        )
    for key in config:
        if key not in CONFIG_KEYS and key not in RECORDED_ONLY:
            near = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
            raise ConfigError(
                f"the config file {path} has no setting {key!r}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f"; its settings: {', '.join(CONFIG_KEYS)}",
                fix="remove or rename it",
            )
    if not isinstance(config.get("options", {}), dict):
        raise ConfigError(f"the config file {path}: options must be a table of backend options")
    return {k: v for k, v in config.items() if k not in RECORDED_ONLY}


def training_settings(args) -> dict:
    """The Trainer's arguments: the config file's, the flags given on the command line winning."""
    file = read_config(args.config) if args.config else {}
    flags = {
        "backend": args.backend,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "seed": args.seed,
        "schedule": args.schedule,
        "steps_per_execution": args.steps_per_execution,
        "log_every": args.log_every,
        "validation": args.validation,
        "augment": args.augment,
        "label_smoothing": args.label_smoothing,
        "ema": args.ema,
        "tta": args.tta,
        "max_memory_gb": args.max_memory_gb,
        "evaluate_each_epoch": args.evaluate_each_epoch or None,
        "log": args.log,
        "workers": args.workers,
    }
    settings = {**file, **{k: v for k, v in flags.items() if v is not None}}
    settings["options"] = {**file.get("options", {}), **backend_options(args)}
    architecture = settings.pop("architecture", None)
    if args.model:
        settings["model"] = _model(args.model)
    elif architecture and not _registered(settings.get("model")):
        from ..spec.model import ModelSpec

        settings["model"] = ModelSpec.from_dict(architecture)
    else:
        settings["model"] = _model(settings.get("model") or "mlp")
    if args.optimizer or args.momentum or args.nesterov or args.weight_decay:
        from ..spec.optimizers import Optimizer, as_optimizer

        recipe = settings.get("optimizer") or settings["model"].recipe.optimizer
        base = as_optimizer(recipe).to_dict()
        base.update(
            {
                k: v
                for k, v in [
                    ("kind", args.optimizer),
                    ("momentum", args.momentum),
                    ("nesterov", args.nesterov or None),
                    ("weight_decay", args.weight_decay),
                ]
                if v is not None
            }
        )
        settings["optimizer"] = Optimizer(**base)
    return settings


def _registered(name) -> bool:
    from ..plugins import models

    return isinstance(name, str) and name in models()


def _recorded(args, trainer) -> dict:
    """What config.json holds: the trainer's config, the architecture of a model that is not a
    registered recipe, and the loggers; a config file for --config."""
    config = trainer.config()
    if not _registered(trainer.model.name) or trainer.model != _model(trainer.model.name):
        config["architecture"] = trainer.model.to_dict()
    if getattr(args, "log", None):
        config["log"] = args.log
    return config


def _model(value: str):
    """A registered model's name, or a JSON file of a ``ModelSpec`` (``ModelSpec.to_dict()``)."""
    from ..errors import ConfigError
    from ..plugins import get_model

    if not value.endswith(".json"):
        return get_model(value)
    from ..spec.model import ModelSpec

    try:
        return ModelSpec.from_dict(json.loads(Path(value).read_text(encoding="utf-8")))
    except UnicodeDecodeError:
        raise ConfigError(
            f"the model file {value} is not UTF-8 text",
            fix="write it with json.dump(spec.to_dict(), file)",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"the model file {value} nests too deeply to be a model",
            fix="write it with json.dump(spec.to_dict(), file)",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the model file {value}: {exc.strerror}",
            fix="give a JSON file written from ModelSpec.to_dict(), or a name from `fmnist models`",
        ) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the model file {value} is not JSON: {exc}",
            fix="write it with json.dump(spec.to_dict(), file)",
        ) from exc


def _recorded_backend(run_folder: str) -> str | None:
    """The backend a run folder's ``config.json`` names: a resumed run launches its own."""
    try:
        return json.loads((Path(run_folder) / "config.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def _launch_workers(args, backend, workers: int) -> int:
    argv = list(args.argv)
    for number, item in enumerate(argv):
        if item == "--workers":
            del argv[number : number + 2]
            break
        if item.startswith("--workers="):
            del argv[number]
            break
    code = backend.launch_workers(argv, workers)
    if code != 0:
        print(
            f"fmnist: error: a worker of {workers} failed (exit code {code}; its rank and "
            "traceback are "
            "above); fix: see the worker's error, then --resume the run folder",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0


def _draw_pictures(run_folder: Path, trainer) -> list[Path]:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print(
            "fmnist: note: no pictures drawn "
            '(matplotlib missing; pip install "fmnist-core[plots]")',
            file=sys.stderr,
        )
        return []
    from ..apps.plots import draw_run

    return draw_run(run_folder, trainer)
