"""``fmnist train``: train, evaluate and save a model into a run folder (config, history,
evaluation, weights, checkpoint, pictures, model card); ``--resume`` continues one,
``--workers N`` trains data-parallel. The settings' flags come from ``TrainConfig``."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from .common import EXIT_ERROR, backend_options, checksum_flags, print_json


def add_arguments(p) -> None:
    from .settings import add_flags

    p.add_argument("--backend", help="backend name (default: best installed)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML or JSON file of settings, backend options (options) and loggers (log); "
        "a run folder's config.json is one; flags given here override it",
    )
    p.add_argument(
        "--model",
        default=None,
        help="a recipe from `fmnist models` (default mlp, the article's), "
        "or a JSON file of your own ModelSpec (its to_dict(); the mlp's recipe applies)",
    )
    add_flags(p)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-parallel processes on this machine (torch: torchrun, gloo on the CPU; tf and "
        "keras: MultiWorkerMirroredStrategy with a TF_CONFIG per worker)",
    )
    p.add_argument("--data-dir", help="the Fashion-MNIST folder (default: found or cached)")
    p.add_argument("--device", help="backend device, e.g. cpu, cuda, auto")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="backend option")
    p.add_argument("--out", help="run folder (default runs/<timestamp>)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder")
    checksum_flags(p)
    p.add_argument("--no-plots", action="store_true", help="draw no pictures into the run folder")
    p.add_argument(
        "--log",
        metavar="LOGGERS",
        help="track the run: csv, tensorboard, mlflow (comma-separated; into the run folder)",
    )
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON")


def run(args) -> int:
    from .. import plugins
    from ..apps.run import recorded_backend
    from ..training.run_folder import RunFolder

    settings = {} if args.resume else training_settings(args)
    name = recorded_backend(args.resume) if args.resume else settings.get("backend")
    backend = plugins.get_backend(args.backend or name)
    workers = args.workers or settings.get("workers") or 1
    if workers > 1 and backend.worker_rank()[1] == 1:  # not yet inside a launched worker
        return _launch_workers(args, backend, workers)
    trainer, folder = _trainer(args, settings)
    lead = trainer.rank == 0  # data-parallel: only rank 0 writes the run folder and prints
    with RunFolder(folder).lock() if lead else contextlib.nullcontext():
        return _train(args, trainer, RunFolder(folder))


def _train(args, trainer, folder) -> int:
    from ..apps.run import train_into

    log = args.log or getattr(args, "config_log", None)
    summary = train_into(trainer, folder, log=log, pictures=not args.no_plots)
    if not summary:
        return 0
    if args.json:
        print_json(summary)
    else:
        accuracy, loss = summary["test_accuracy"], summary["test_loss"]
        print(f"\nTest accuracy: {accuracy * 100:>0.1f}%, test loss: {loss:>8f}")
        print(f"Saved {summary['weights']} (run folder {folder.path})")
    return 0


def _trainer(args, settings: dict):
    from ..errors import ConfigError
    from ..training.tracking import loggers_for
    from ..training.trainer import Trainer

    verbose = 0 if (args.json or args.quiet) else "auto"
    if args.resume:
        folder = Path(args.resume)
        trainer = Trainer.resume(folder, verbose=verbose, data_dir=args.data_dir)
        if args.epochs is not None:
            if args.epochs <= trainer.state.epochs_done:
                raise ConfigError(
                    f"--epochs {args.epochs}: the run has done {trainer.state.epochs_done} "
                    "epochs already",
                    fix=f"pass --epochs {trainer.state.epochs_done + 1} or more to train on",
                )
            trainer.config = trainer.config.replace(epochs=args.epochs)
        if args.log:
            trainer.callbacks += loggers_for(args.log, folder)
        return trainer, folder
    folder = Path(args.out) if args.out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    settings = dict(settings)
    settings.pop("workers", None)
    log, options = settings.pop("log", None), settings.pop("options", {})
    args.config_log = log
    trainer = Trainer(
        **settings,
        callbacks=loggers_for(log, folder) if log else (),
        data_dir=args.data_dir,
        verbose=verbose,
        verify_checksums=not args.skip_checksums,
        **options,
    )
    return trainer, folder


def training_settings(args) -> dict:
    """The Trainer's arguments: the config file's, the flags given on the command line winning."""
    from ..apps.run import resolve_model
    from ..training.config import check_options
    from .settings import from_flags, read_file

    file = read_file(args.config) if args.config else {}
    runs = {"backend": args.backend, "log": args.log, "workers": args.workers}
    settings = {**file, **{k: v for k, v in runs.items() if v is not None}}
    settings["options"] = {**file.get("options", {}), **backend_options(args)}
    check_options(settings["options"], "--option")
    settings["model"] = model = resolve_model(settings, args.model)
    return from_flags(args, settings, model.recipe)


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
            "traceback are above); fix: see the worker's error, then --resume the run folder",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0
