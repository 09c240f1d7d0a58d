"""Sweeps on Ray Tune (``fmnist-core[tune]``): the same code on this machine and on a Ray cluster.

    fmnist tune --space learning_rate=loguniform:0.01:0.5 --space batch_size=choice:32,64,128 \\
                --num-samples 8 --epochs 2 --scheduler asha --out sweeps/lr
    fmnist_core.apps.tune.run_sweep({"learning_rate": ("loguniform", 0.01, 0.5)}, epochs=2,
                                    num_samples=8)

A space maps ``Trainer`` arguments (model, learning_rate, batch_size, optimizer, schedule,
epochs, backend, backend options…) to ``(kind, *args)``: ``choice``/``grid`` (values),
``uniform``/``loguniform`` (low, high), ``randint`` (low, high); a plain value is fixed. Every
trial is an ordinary fmnist run folder (config, history, weights, pictures) under the sweep
folder; trials report validation accuracy each epoch (ASHA stops the weak ones early); the best
trial alone is evaluated on the test set and its weights copied to the sweep folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FmnistError

KINDS = {"choice": None, "grid": None, "uniform": 2, "loguniform": 2, "randint": 2}
METRIC = "val_accuracy"


def _trainer_arguments() -> set[str]:
    """What a space may tune: the run's settings (``TrainConfig``), the model, the backend and
    every installed backend's options."""
    from .. import plugins
    from ..training.config import NAMES

    return {*NAMES, "model", "backend"} | {
        o.name for b in plugins.backends().values() for o in b.options
    }


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_space(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=loguniform:0.01:0.5", "batch_size=choice:32,64", "epochs=3"]``: a space."""
    space = {}
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep:
            raise ConfigError(
                f"search space entry {item!r} has no '='",
                fix="write NAME=KIND:ARGS, e.g. lr=loguniform:0.01:0.5",
            )
        kind, colon, args = rest.partition(":")
        if colon and kind in KINDS:
            values = [_value(v) for v in args.replace(",", ":").split(":") if v != ""]
            space[name.strip()] = (kind, *values)
        else:
            space[name.strip()] = _value(rest)
    return space


def load_space_file(path: str | Path) -> dict[str, Any]:
    """A TOML file: ``[space]`` entries as ``name = {loguniform = [0.01, 0.5]}`` or plain values."""
    import tomllib

    from ..atomic import read_user_file

    fix = "write a TOML file with a [space] table"
    text = read_user_file(path, "the search space file", 1 << 20, fix)
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(
            f"the search space file {path} is not TOML: {str(exc)[:120]}", fix=fix
        ) from None
    if not isinstance(data.get("space", {}), dict):
        raise ConfigError(f"the search space file {path}: space must be a table", fix=fix)
    space = {}
    for name, value in data.get("space", {}).items():
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS:
            kind, args = next(iter(value.items()))
            space[name] = (kind, *(args if isinstance(args, list) else [args]))
        else:
            space[name] = value
    return space


def check_space(space: dict[str, Any]) -> None:
    """A one-line ``ConfigError`` for an invalid space, before Ray starts."""
    known = _trainer_arguments()
    for name, value in space.items():
        if name not in known:
            raise ConfigError(
                f"search space: {name!r} is not a Trainer argument or backend option",
                fix=f"use some of {', '.join(sorted(known))}",
            )
        if not (isinstance(value, tuple) and value and value[0] in KINDS):
            continue
        kind, args = value[0], value[1:]
        if KINDS[kind] is None and not args:
            raise ConfigError(
                f"search space: {name}={kind} needs at least one value",
                fix=f"e.g. {name}={kind}:1,2",
            )
        if KINDS[kind] is not None:
            if (
                len(args) != 2
                or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
                or not args[0] < args[1]
            ):
                raise ConfigError(
                    f"search space: {name}={kind} needs two numbers low < high, got {list(args)}",
                    fix=f"e.g. {name}={kind}:0.01:0.5",
                )
            if kind == "loguniform" and args[0] <= 0:
                raise ConfigError(
                    f"search space: {name}=loguniform needs low > 0, got {args[0]}",
                    fix="use a positive low",
                )


def _to_ray(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    makers = {
        "choice": lambda *v: tune.choice(list(v)),
        "grid": lambda *v: tune.grid_search(list(v)),
        "uniform": tune.uniform,
        "loguniform": tune.loguniform,
        "randint": tune.randint,
    }
    return {
        name: makers[v[0]](*v[1:]) if isinstance(v, tuple) and v and v[0] in KINDS else v
        for name, v in space.items()
    }


def _trial(
    config: dict[str, Any], epochs: int, validation: int | float, data_dir: str | None
) -> None:
    """One trial: an ordinary run folder in Ray's trial folder, a report each epoch."""
    from ray import tune

    from ..training.callbacks import Callback
    from ..training.run_folder import RunFolder
    from ..training.trainer import Trainer
    from .run import recorded

    folder = RunFolder(tune.get_context().get_trial_dir())

    class Report(Callback):
        def on_epoch_end(self, trainer, record):
            # the files first: ASHA may stop the trial right after the report
            trainer.save(folder.weights)
            folder.write_history(trainer.history)
            tune.report(
                {
                    METRIC: record.val_accuracy,
                    "val_loss": record.val_loss,
                    "loss": record.loss,
                    "accuracy": record.accuracy,
                    "epoch": record.epoch + 1,
                }
            )

    settings = {
        "epochs": epochs,
        **config,
        "validation": validation,
        "verbose": 0,
        "data_dir": data_dir,
    }
    trainer = Trainer(callbacks=[Report()], **settings)
    folder.write_config(recorded(trainer))
    trainer.fit()
    try:
        from .plots import draw_run

        draw_run(folder.path, trainer, test_set=False)  # a trial never looks at the test set
    except ImportError:  # pictures need matplotlib
        pass


@dataclass
class SweepResult:
    """The sweep's folder, its trials (by validation accuracy) and the best one's test figure."""

    folder: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    seconds: float = 0.0


def run_sweep(
    space: dict[str, Any],
    *,
    epochs: int = 2,
    num_samples: int = 1,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    validation: int | float = 5000,
    out: str | Path | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    seed: int = 0,
    num_cpus: int | None = None,
    resume: bool = False,
    data_dir: str | None = None,
    max_failures: int = 0,
) -> SweepResult:
    """Run a sweep; see the module docstring. Returns the sorted table and the best trial."""
    check_space(space)
    if scheduler not in (None, "asha"):
        raise ConfigError(f"unknown scheduler {scheduler!r}", fix="use scheduler='asha' or none")
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator
    except ImportError as exc:
        raise FmnistError("sweeps need Ray Tune", fix='pip install "fmnist-core[tune]"') from exc
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    folder = Path(out or Path("sweeps") / time.strftime("%Y%m%d-%H%M%S")).resolve()
    started = time.perf_counter()
    own_cluster = not ray.is_initialized()
    if own_cluster and address:
        check_cluster(address)
    if own_cluster:
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        trainable = tune.with_resources(
            tune.with_parameters(_trial, epochs=epochs, validation=validation, data_dir=data_dir),
            {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
        )
        if resume and tune.Tuner.can_restore(str(folder)):
            tuner = tune.Tuner.restore(
                str(folder), trainable, resume_unfinished=True, resume_errored=False
            )
        else:
            asha = (
                ASHAScheduler(max_t=epochs, grace_period=1, reduction_factor=2, time_attr="epoch")
                if scheduler
                else None
            )
            tuner = tune.Tuner(
                trainable,
                param_space=_to_ray(space),
                tune_config=tune.TuneConfig(
                    metric=METRIC,
                    mode="max",
                    num_samples=num_samples,
                    max_concurrent_trials=max_concurrent,
                    scheduler=asha,
                    search_alg=BasicVariantGenerator(random_state=seed),
                    trial_dirname_creator=lambda trial: f"trial-{trial.trial_id}",
                ),
                run_config=tune.RunConfig(
                    name=folder.name,
                    storage_path=str(folder.parent),
                    verbose=0,
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                ),
            )
        grid = tuner.fit()
    finally:
        if own_cluster:
            ray.shutdown()
    unfinished = _unfinished_trials(folder)
    if unfinished:  # Ctrl-C: Ray Tune saved the sweep's state and stopped its trials
        raise FmnistError(
            f"the sweep in {folder} was stopped with {unfinished} of {len(grid)} trials unfinished",
            fix="run the same command with --resume to finish them (finished trials are kept)",
        )
    result = SweepResult(folder, seconds=time.perf_counter() - started)
    result.rows = _table(grid, space, epochs)
    _write_outputs(result, data_dir)
    return result


def _unfinished_trials(folder: Path) -> int:
    """Trials the sweep's saved state holds as not yet run to the end: after Ctrl-C Ray Tune
    marks the stopped trials terminated in memory, but saves them as pending (what --resume
    reads)."""
    from ray.tune import ExperimentAnalysis

    with _quiet_stderr():  # it warns about every trial that has not reported yet
        trials = ExperimentAnalysis(str(folder)).trials
    return sum(trial.status not in ("TERMINATED", "ERROR") for trial in trials)


TOKEN_FIX = (
    "on a cluster started with token authentication, give this driver the head's token: "
    "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the output of `ray get-auth-token` on the head> "
    "(or RAY_AUTH_TOKEN_PATH=<a file holding it>)"
)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_grpc(connection, timeout: float) -> bool:
    """Whether the listener speaks HTTP/2, as Ray's GCS (gRPC) does: it answers the client
    preface with a SETTINGS frame at once; a listener that is not Ray stays silent or says
    something else, and Ray's own client would retry it for most of a minute."""
    connection.settimeout(timeout)
    try:
        connection.sendall(HTTP2_PREFACE)
        reply = connection.recv(9)
    except OSError:
        return False
    return len(reply) == 9 and reply[3] == 4  # frame type 4: SETTINGS


def check_cluster(address: str, timeout: float = 5.0) -> dict[str, Any]:
    """Whether the Ray cluster at ``address`` (``HOST:PORT``, ``ray start --head``'s) answers,
    accepts this driver's token and runs this driver's Ray and Python; one ``ConfigError``
    naming the address and the fix otherwise, in seconds rather than Ray's minutes of retries.
    Returns the cluster's recorded versions."""
    import socket

    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(
            f"--address {address!r} is not HOST:PORT",
            fix="give the head node's address and port, e.g. --address 10.0.0.5:6379",
        )
    host = host.strip("[]")
    try:
        connection = socket.create_connection((host, int(port_text)), timeout=timeout)
    except (UnicodeError, ValueError) as exc:  # a label over 63 characters, a NUL…
        raise ConfigError(
            f"--address {address[:80]!r}: {host[:60]!r} is not a valid host name ({exc})"[:300],
            fix="give the head node's IP address or DNS name, e.g. --address 10.0.0.5:6379",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__})",
            fix=f"start one there with `ray start --head --node-ip-address {host} --port "
            f"{port_text}`, or check the address and that this machine can reach that port",
        ) from exc
    with connection:
        if os.environ.get("RAY_USE_TLS", "0") in ("0", "") and not _answers_grpc(
            connection, timeout
        ):
            raise ConfigError(
                f"{address} accepts connections but does not answer as a Ray cluster's head "
                f"(no gRPC reply within {timeout:g} s)",
                fix="give the port of `ray start --head --port PORT` (default 6379)",
            )
    from ray._common.usage.usage_lib import get_cluster_metadata
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        with _quiet_stderr():  # Ray's C++ client logs each refused attempt
            metadata = get_cluster_metadata(GcsClient(address=address, cluster_id=None)) or {}
    except AuthenticationError as exc:
        given = os.environ.get("RAY_AUTH_MODE") == "token"
        raise ConfigError(
            f"the Ray cluster at {address} refused this driver: its token is "
            + ("not the cluster's" if given else "missing (RAY_AUTH_MODE is not 'token')"),
            fix=TOKEN_FIX,
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"{address} answers but not as a Ray cluster's head ({type(exc).__name__})",
            fix="give the port of `ray start --head --port PORT` (default 6379)",
        ) from exc
    from ray._private.utils import check_version_info, compute_version_info

    try:  # Ray's own rule (RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL), Ray's own versions
        if metadata:
            check_version_info(metadata, "this driver", raise_on_mismatch=True)
    except RuntimeError as exc:
        theirs = (metadata.get("ray_version"), metadata.get("python_version"))
        ours = compute_version_info()
        raise ConfigError(
            f"the Ray cluster at {address} runs Ray {theirs[0]} on Python {theirs[1]}, this "
            f"driver Ray {ours[0]} on Python {ours[1]}; Ray needs the same on every process",
            fix=f"run fmnist tune with Python {theirs[1]} and `pip install ray[tune]=={theirs[0]}`"
            ", or start the cluster with this machine's versions",
        ) from exc
    return metadata


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for a while: native libraries write there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    fmnist = [
        line for line in lines if "Error: " in line and "fmnist" not in line.split(":")[0].lower()
    ]
    return (fmnist or lines or [type(error).__name__])[-1].replace("fmnist_core.errors.", "")[:300]


def _table(grid, space: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
    rows = []
    for result in grid:
        config = {k: result.config.get(k) for k in space}
        history = result.metrics_dataframe
        curve = (
            [] if history is None or METRIC not in history else [float(v) for v in history[METRIC]]
        )
        if result.error is not None:
            status = f"failed: {_reason(result.error)}"
        elif len(curve) < epochs:
            status = f"stopped early after epoch {len(curve)}"
        else:
            status = "done"
        rows.append(
            {
                "trial": Path(result.path).name,
                **config,
                "status": status,
                "epochs": len(curve),
                "val_accuracy": max(curve) if curve else None,
                "final_val_accuracy": curve[-1] if curve else None,
                "curve": curve,
                "path": result.path,
            }
        )
    rows.sort(
        key=lambda r: (
            -(r["val_accuracy"] if r["val_accuracy"] is not None else -1),
            json.dumps({k: r[k] for k in space}, sort_keys=True, default=str),
        )
    )
    return rows


def _write_outputs(result: SweepResult, data_dir: str | None) -> None:
    from ..atomic import atomic_write_bytes, atomic_write_json
    from ..training.run_folder import RunFolder
    from ..training.trainer import Trainer

    folder, rows = result.folder, result.rows
    folder.mkdir(parents=True, exist_ok=True)
    columns = [k for k in rows[0] if k not in ("curve", "path")] if rows else []
    csv_lines = [",".join(columns)] + [",".join(_cell(r[c]) for c in columns) for r in rows]
    atomic_write_bytes(folder / "sweep.csv", ("\n".join(csv_lines) + "\n").encode())
    markdown = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    markdown += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    atomic_write_bytes(folder / "sweep.md", ("\n".join(markdown) + "\n").encode())
    done = [
        r for r in rows if r["val_accuracy"] is not None and RunFolder(r["path"]).weights.exists()
    ]
    if done:
        best = done[0]
        atomic_write_bytes(
            folder / "best.safetensors", RunFolder(best["path"]).weights.read_bytes()
        )
        trainer = Trainer.load(folder / "best.safetensors", verbose=0, data_dir=data_dir)
        test = trainer.evaluate()  # the test set, touched once, for the best trial only
        result.best = {
            "trial": best["trial"],
            "val_accuracy": best["val_accuracy"],
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "config": {
                k: best[k]
                for k in columns
                if k not in ("trial", "status", "epochs", "val_accuracy", "final_val_accuracy")
            },
        }
        atomic_write_json(folder / "best.json", result.best)
    try:
        _draw(result)
    except ImportError:
        pass


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isnan(value) else "nan"
    return "" if value is None else str(value).replace(",", ";").replace("|", "/")


def _draw(result: SweepResult) -> None:
    import matplotlib

    from .plots import save_figure

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    for number, row in enumerate(result.rows):
        if not row["curve"]:
            continue
        best = number == 0
        axes.plot(
            range(1, len(row["curve"]) + 1),
            row["curve"],
            marker="o",
            lw=2.5 if best else 1,
            color="tab:red" if best else "tab:gray",
            alpha=1 if best else 0.6,
            zorder=3 if best else 2,
            label=f"best: {row['trial']}" if best else None,
        )
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy")
    axes.set_title(f"{len(result.rows)} trials; best in red")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    save_figure(figure, result.folder / "sweep.png")
