"""The ``fmnist`` command line: backends, models, info, train, evaluate, predict, sample, export, convert, serve.

Errors print as one line on stderr (``--debug`` shows the traceback). Exit codes: 0 success,
1 an fmnist error (bad input, missing data, unknown backend), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_backends(args) -> int:
    from . import plugins

    rows = []
    for name, backend in sorted(plugins.backends().items()):
        reason = backend.unavailable_reason()
        if reason is None and args.check:
            try:
                backend.versions()
                from .backend import EngineConfig

                backend.create_engine(EngineConfig(plugins.get_model("mlp")))
            except Exception as exc:  # report, keep listing the others
                reason = f"{type(exc).__name__}: {exc}"
        rows.append({"name": name, "available": reason is None, "reason": reason,
                     "priority": backend.priority,
                     "options": [{"name": o.name, "type": getattr(o.type, "__name__", str(o.type)), "default": o.default,
                                  "choices": list(o.choices), "help": o.help} for o in backend.options],
                     "description": backend.description})
    failures = [{"plugin": f.name, "entry_point": f.value, "error": f.error}
                for f in plugins.plugin_failures()]
    if args.json:
        _print_json({"backends": rows, "failed_plugins": failures})
    else:
        for row, backend in zip(rows, (b for _, b in sorted(plugins.backends().items())), strict=True):
            state = "ok" if row["available"] else f"unavailable: {row['reason']}"
            print(f"{row['name']:<8} {state:<12} {row['description']}")
            if args.options:
                for option in backend.options:
                    print(f"{'':<10}{option.describe()}")
        for failure in failures:
            print(f"plugin {failure['plugin']!r} failed to load: {failure['error']}")
    return 0


def cmd_info(args) -> int:
    import platform

    from . import __version__, data, plugins

    found = None
    try:
        located = data.locate(args.data_dir)
        found = None if located is None else {"place": located[0],
                                              "files": {k: str(v) for k, v in located[1].items()}}
    except Exception as exc:
        found = {"error": str(exc)}
    info = {
        "fmnist_core": __version__, "python": platform.python_version(),
        "cache_dir": str(data.cache_dir()),
        "data_search_path": [f"{label}: {path}" for label, path in data.search_path(args.data_dir)],
        "data_found": found,
        "backends": {n: (b.unavailable_reason() or b.versions()) for n, b in plugins.backends().items()},
        "weight_formats": sorted(plugins.weight_formats()),
    }
    if args.json:
        _print_json(info)
    else:
        for key, value in info.items():
            print(f"{key}: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}")
    return 0


def _trainer_options(args) -> dict:
    options = {}
    for item in args.option or []:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if getattr(args, "device", None):
        options["device"] = args.device
    return options


def cmd_models(args) -> int:
    from .plugins import models

    rows = [{"name": name, "parameters": spec.count_params(), "layers": len(spec.layers),
             "description": spec.description, "recipe": {
                 "epochs": spec.recipe.epochs, "batch_size": spec.recipe.batch_size,
                 "learning_rate": spec.recipe.learning_rate, "optimizer": str(spec.recipe.optimizer),
                 "schedule": str(spec.recipe.schedule)}, "architecture": spec.to_dict()["layers"]}
            for name, spec in sorted(models().items())]
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            r = row["recipe"]
            print(f"{row['name']:<8} {row['parameters']:>8,} parameters  {row['description']}")
            print(f"{'':<8} recipe: {r['optimizer']} lr {r['learning_rate']}, {r['schedule']} schedule, "
                  f"batch {r['batch_size']}, {r['epochs']} epochs")
        if args.verbose:
            for name, spec in sorted(models().items()):
                print(f"\n{name}:\n{spec.summary()}")
    return 0


def cmd_train(args) -> int:
    from .files import atomic_write_json
    from .workers import worker_rank

    if args.workers > 1 and worker_rank()[1] == 1:  # not yet inside a launched worker
        return _launch_workers(args)
    from .trainer import Trainer

    verbose = 0 if (args.json or args.quiet) else "auto"
    started = time.perf_counter()
    if args.resume:
        run = Path(args.resume)
        trainer = Trainer.resume(run, verbose=verbose, data_dir=args.data_dir)
        if args.epochs:
            trainer.epochs = args.epochs
        if args.log:
            from .tracking import loggers_for

            trainer.callbacks += loggers_for(args.log, run)
    else:
        run = Path(args.out) if args.out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        model = _model(args.model)
        optimizer = None
        if args.optimizer or args.momentum or args.nesterov or args.weight_decay:
            from .optimizers import Optimizer

            recipe = model.recipe.optimizer
            kind = args.optimizer or (recipe if isinstance(recipe, str) else recipe.kind)
            optimizer = Optimizer(kind, momentum=args.momentum or 0.0, nesterov=args.nesterov,
                                  weight_decay=args.weight_decay or 0.0)
        from .tracking import loggers_for

        trainer = Trainer(backend=args.backend, model=model, epochs=args.epochs,
                          callbacks=loggers_for(args.log, run) if args.log else (),
                          batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                          optimizer=optimizer, schedule=args.schedule,
                          steps_per_execution=args.steps_per_execution, log_every=args.log_every,
                          data_dir=args.data_dir, verbose=verbose, evaluate_each_epoch=args.evaluate_each_epoch,
                          validation=args.validation,
                          verify_checksums=not args.skip_checksums, **_trainer_options(args))
    lead = trainer.rank == 0  # data-parallel: only rank 0 writes the run folder and prints
    if lead:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run / "config.json", trainer.config())
    history = trainer.fit(checkpoint_dir=run)
    result = trainer.evaluate()
    weights = trainer.save(run / "weights.safetensors")
    if not lead:
        return 0
    atomic_write_json(run / "config.json", trainer.config())  # now with the device used
    atomic_write_json(run / "history.json", history.to_dict())
    atomic_write_json(run / "evaluation.json", result.to_dict())
    pictures = _draw_pictures(run, trainer) if not args.no_plots else []
    summary = {"run": str(run), "backend": trainer.backend.name, "weights": str(weights),
               "pictures": [str(p) for p in pictures],
               "test_loss": result.loss, "test_accuracy": result.accuracy,
               "epoch_seconds": history.column("seconds"), "wall_seconds": time.perf_counter() - started}
    if args.json:
        _print_json(summary)
    else:
        print(f"\nTest accuracy: {result.accuracy * 100:>0.1f}%, test loss: {result.loss:>8f}")
        print(f"Saved {weights} (run folder {run})")
    return 0


def _model(value: str):
    """A registered model's name, or a JSON file of a ``ModelSpec`` (``ModelSpec.to_dict()``)."""
    from .errors import ConfigError
    from .plugins import get_model

    if not value.endswith(".json"):
        return get_model(value)
    from .models import ModelSpec

    try:
        return ModelSpec.from_dict(json.loads(Path(value).read_text()))
    except OSError as exc:
        raise ConfigError(f"cannot read the model file {value}: {exc.strerror}", fix="give a JSON file written "
                          "from ModelSpec.to_dict(), or a name from `fmnist models`") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the model file {value} is not JSON: {exc}", fix="write it with "
                          "json.dump(spec.to_dict(), file)") from exc


def _launch_workers(args) -> int:
    from . import plugins

    argv = list(args.argv)
    for number, item in enumerate(argv):
        if item == "--workers":
            del argv[number : number + 2]
            break
        if item.startswith("--workers="):
            del argv[number]
            break
    name = args.backend
    if args.resume and not name:  # the resumed run's own backend launches its workers
        try:
            name = json.loads((Path(args.resume) / "config.json").read_text()).get("backend")
        except (OSError, ValueError):
            name = None
    backend = plugins.get_backend(name)
    code = backend.launch_workers(argv, args.workers)
    if code != 0:
        print(f"fmnist: error: a worker of {args.workers} failed (exit code {code}; its rank and traceback are "
              "above); fix: see the worker's error, then --resume the run folder", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _draw_pictures(run: Path, trainer) -> list[Path]:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print('fmnist: note: no pictures drawn (matplotlib missing; pip install "fmnist-core[plots]")',
              file=sys.stderr)
        return []
    from .plots import draw_run

    return draw_run(run, trainer)


def cmd_report(args) -> int:
    from .plots import comparison_figure, draw_run, load_run, save_figure

    runs = {}
    for folder in map(Path, args.runs):
        history, evaluation, config = load_run(folder)
        for path in draw_run(folder):
            print(f"wrote {path}")
        backend = config.get("backend", "?")
        name = folder.name if folder.name == backend else f"{folder.name} ({backend})"
        runs[name] = (history, evaluation.get("accuracy"))
    if len(runs) > 1 or args.compare:
        target = Path(args.compare or "comparison.png")
        save_figure(comparison_figure(runs), target)
        print(f"wrote {target}")
    return 0


def cmd_evaluate(args) -> int:
    from .trainer import Trainer

    trainer = Trainer.load(args.weights, backend=args.backend, data_dir=args.data_dir, verbose=0,
                           verify_checksums=not args.skip_checksums)
    result = trainer.evaluate(args.split)
    if args.json:
        _print_json({"backend": trainer.backend.name, **result.to_dict()})
    else:
        print(f"{args.split} accuracy: {result.accuracy * 100:.2f}%, loss: {result.loss:.6f} "
              f"({result.count} images, backend {trainer.backend.name})")
    return 0


def cmd_predict(args) -> int:
    from dataclasses import replace

    from .images import collect_image_paths, read_images
    from .trainer import Trainer

    trainer = Trainer.load(args.weights, backend=args.backend, verbose=0)
    listed = collect_image_paths(args.images)
    # read once: for the predictions and the grid
    paths, images, bad = read_images(listed, max_pixels=args.max_pixels,
                                     on_error="skip" if args.keep_going else "raise")
    predictions = [replace(p, path=str(path))
                   for p, path in zip(trainer.predict(images, output="predictions"), paths, strict=True)] if len(images) else []
    if args.grid and len(images):
        from .plots import predictions_figure, save_figure

        save_figure(predictions_figure(images, [p.index for p in predictions], names=[p.name for p in paths]), args.grid)
    if args.json:
        rows = [{"path": p.path, "index": p.index, "label": p.label,
                 **({"probabilities": list(p.probabilities)} if args.probabilities else {})}
                for p in predictions]
        rows += [{"path": str(b.path), "error": b.error} for b in bad]
        position = {str(path): number for number, path in enumerate(listed)}
        _print_json(sorted(rows, key=lambda row: position[row["path"]]))
    else:
        for p in predictions:
            extra = f"  p={max(p.probabilities):.3f}" if args.probabilities else ""
            print(f"{p.path}: {p.label}{extra}")
        for b in bad:
            print(f"fmnist: error: {b.error}", file=sys.stderr)
    if bad:
        print(f"fmnist: error: {len(bad)} of {len(bad) + len(predictions)} images could not be read",
              file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_sample(args) -> int:
    from .data import load_dataset
    from .images import save_samples

    data = load_dataset(args.data_dir, verify=not args.skip_checksums)
    split = getattr(data, args.split)
    written = save_samples(split, args.out, count=args.count, start=args.start)
    if args.json:
        _print_json([{"path": str(path), "index": index, "label": label} for path, index, label in written])
    else:
        for path, _, label in written:
            print(f"{path}: {label}")
    return 0


def cmd_tune(args) -> int:
    from .tune import load_space_file, parse_space, run_sweep

    space = load_space_file(args.config) if args.config else {}
    space.update(parse_space(args.space or []))
    for name in ("backend", "model"):
        if getattr(args, name):
            space.setdefault(name, getattr(args, name))
    if not space:
        from .errors import ConfigError

        raise ConfigError("an empty search space", fix="pass --space NAME=KIND:ARGS or --config sweep.toml")
    result = run_sweep(space, epochs=args.epochs, num_samples=args.num_samples, max_concurrent=args.max_concurrent,
                       scheduler=None if args.scheduler == "none" else args.scheduler, validation=args.validation,
                       out=args.out, address=args.address, cpus_per_trial=args.cpus_per_trial,
                       gpus_per_trial=args.gpus_per_trial, seed=args.seed, resume=args.resume, data_dir=args.data_dir)
    if args.json:
        _print_json({"folder": str(result.folder), "seconds": result.seconds, "best": result.best,
                     "trials": [{k: v for k, v in r.items() if k != "curve"} for r in result.rows]})
    else:
        print((result.folder / "sweep.md").read_text())
        if result.best:
            print(f"best: {result.best['trial']}, validation accuracy {result.best['val_accuracy']:.4f}, "
                  f"test accuracy {result.best['test_accuracy']:.4f} (weights: {result.folder / 'best.safetensors'})")
        print(f"sweep folder {result.folder}, {result.seconds:.1f} s")
    return 0


def cmd_serve(args) -> int:
    from .serve import ServeSettings, serve

    settings = ServeSettings(max_batch=args.max_batch, wait_ms=args.wait_ms, max_bytes=args.max_bytes,
                             max_files=args.max_files, max_pixels=args.max_pixels)
    serve(args.weights, backend=args.backend, host=args.host, port=args.port, workers=args.workers, settings=settings)
    return 0


def cmd_export(args) -> int:
    from .trainer import Trainer

    trainer = Trainer.load(args.weights, verbose=0)
    trainer.export(args.target, format=args.format)
    print(f"wrote {args.target} ({args.format}) from {args.weights}")
    return 0


def cmd_convert(args) -> int:
    from .formats import read_weights, write_weights
    from .trainer import model_of

    weights = read_weights(args.source, args.from_format)
    weights.params = model_of(weights).check_params(weights.params, source=str(args.source))
    fmt = write_weights(args.target, weights, args.to)
    print(f"wrote {args.target} ({fmt.name}) from {args.source}")
    return 0


def _count_or_fraction(text: str) -> int | float:
    value = float(text)
    return value if 0 < value < 1 else int(value)


class _Deprecated(argparse.Action):
    """An old flag that still works, with a warning naming the new one."""

    def __call__(self, parser, namespace, values, option_string=None):
        new = "--" + self.dest.replace("_", "-")
        print(f"fmnist: warning: {option_string} is now {new}; {option_string} goes in fmnist 0.3", file=sys.stderr)
        setattr(namespace, self.dest, True)


def _checksum_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-checksums", action="store_true", help="skip the data files' checksums (knowingly)")
    p.add_argument("--no-verify", dest="skip_checksums", action=_Deprecated, nargs=0, help="deprecated: --skip-checksums")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmnist", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("backends", help="list installed backends and plugins that failed to load")
    p.add_argument("--check", action="store_true", help="import each framework and build a model")
    p.add_argument("--options", action="store_true", help="also each backend's options")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser("info", help="where the data is, cache folder, versions")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("models", help="list the model recipes with their parameter counts")
    p.add_argument("--verbose", "-v", action="store_true", help="also each model's layers and shapes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train, evaluate and save a model into a run folder")
    p.add_argument("--backend", help="backend name (default: best installed)")
    p.add_argument("--model", default="mlp", help="a recipe from `fmnist models` (default mlp, the article's), or "
                   "a JSON file of your own ModelSpec (its to_dict(); the mlp's recipe applies)")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's recipe (mlp: 5)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (mlp: 64)")
    p.add_argument("--lr", type=float, default=None, help="(peak) learning rate; default: the recipe's (mlp: 0.1)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help="default: the recipe's (mlp: sgd)")
    p.add_argument("--momentum", type=float, help="SGD momentum")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    p.add_argument("--weight-decay", type=float, help="L2 (sgd, adam) or decoupled (adamw) weight decay")
    p.add_argument("--schedule", choices=["constant", "step", "cosine", "onecycle"],
                   help="learning-rate schedule; default: the recipe's (mlp: constant)")
    p.add_argument("--steps-per-execution", type=int, default=100, help="steps per engine call (default 100)")
    p.add_argument("--log-every", type=int, default=100, help="progress every N batches (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1,
                   help="data-parallel processes on this machine (torch: torchrun, gloo on the CPU; tf and keras: "
                   "MultiWorkerMirroredStrategy with a TF_CONFIG per worker)")
    p.add_argument("--data-dir")
    p.add_argument("--device", help="backend device, e.g. cpu, cuda, auto")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="backend option")
    p.add_argument("--out", help="run folder (default runs/<timestamp>)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder")
    p.add_argument("--evaluate-each-epoch", action="store_true", help="evaluate on the test set every epoch")
    p.add_argument("--validation", type=_count_or_fraction, default=None, metavar="N",
                   help="hold out N training images (or a fraction, 0.1) as a validation split, reported each epoch")
    p.add_argument("--validate", dest="evaluate_each_epoch", action=_Deprecated, nargs=0,
                   help="deprecated: --evaluate-each-epoch")
    _checksum_flags(p)
    p.add_argument("--no-plots", action="store_true", help="draw no pictures into the run folder")
    p.add_argument("--log", metavar="LOGGERS", help="track the run: csv, tensorboard, mlflow (comma-separated; "
                   "into the run folder)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a weights file on the test set")
    p.add_argument("weights")
    p.add_argument("--backend")
    p.add_argument("--split", default="test", choices=["test", "train", "validation"])
    p.add_argument("--data-dir")
    _checksum_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images or folders of images")
    p.add_argument("--weights", required=True)
    p.add_argument("images", nargs="+")
    p.add_argument("--backend")
    p.add_argument("--probabilities", action="store_true")
    p.add_argument("--grid", metavar="PNG", help="also draw the images with their predictions")
    p.add_argument("--keep-going", action="store_true",
                   help="predict every readable image, report the bad ones, exit 1 at the end if any")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images declaring more pixels (default 40,000,000)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("report", help="(re)draw a run folder's pictures; several runs: a comparison")
    p.add_argument("runs", nargs="+")
    p.add_argument("--compare", metavar="PNG", help="comparison picture (default comparison.png with 2+ runs)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sample", help="write dataset images as PNG files (and labels.csv) into a folder")
    p.add_argument("out", help="folder to write into (created)")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--start", type=int, default=0, help="index of the first image")
    p.add_argument("--data-dir")
    _checksum_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("tune", help="a hyper-parameter sweep on Ray Tune (needs fmnist-core[tune])")
    p.add_argument("--space", action="append", metavar="NAME=KIND:ARGS",
                   help="e.g. learning_rate=loguniform:0.01:0.5, batch_size=choice:32,64 (kinds: choice, grid, "
                        "uniform, loguniform, randint; a plain value is fixed)")
    p.add_argument("--config", metavar="TOML", help="a file with a [space] table")
    p.add_argument("--backend")
    p.add_argument("--model")
    p.add_argument("--epochs", type=int, default=2, help="per trial (ASHA's maximum)")
    p.add_argument("--num-samples", type=int, default=1, help="samples of the space (each grid point that often)")
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--scheduler", choices=["asha", "none"], default="none")
    p.add_argument("--validation", type=_count_or_fraction, default=5000)
    p.add_argument("--cpus-per-trial", type=float, default=1)
    p.add_argument("--gpus-per-trial", type=float, default=0)
    p.add_argument("--address", help="join an existing Ray cluster (ray start --head …)")
    p.add_argument("--out", help="sweep folder (default sweeps/<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --out")
    p.add_argument("--seed", type=int, default=0, help="of the search")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("serve", help="serve a model over HTTP (POST /predict; needs fmnist-core[serve])")
    p.add_argument("weights", help="any weights file an installed backend loads, .onnx included")
    p.add_argument("--backend")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="server processes")
    p.add_argument("--max-batch", type=int, default=64, help="images per forward pass (micro-batching)")
    p.add_argument("--wait-ms", type=float, default=5.0, help="how long a request waits for others to batch with")
    p.add_argument("--max-bytes", type=int, default=5_000_000, help="largest image file accepted")
    p.add_argument("--max-files", type=int, default=256, help="most images in one request")
    p.add_argument("--max-pixels", type=int, default=None, help="largest declared image size (default 40,000,000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", help="export weights for serving without a framework (ONNX)")
    p.add_argument("weights")
    p.add_argument("target", help="e.g. model.onnx")
    p.add_argument("--format", default="onnx", choices=["onnx"])
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="convert weights between formats (any installed plugin's)")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--to", help="target format (default: by the target's suffix)")
    p.add_argument("--from", dest="from_format", help="source format (default: detected)")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import FmnistError

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except FmnistError as exc:
        if args.debug:
            raise
        print(f"fmnist: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fmnist: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
