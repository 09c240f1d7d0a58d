"""Running a sweep: each trial an fmnist run folder, the sweep resumable."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError, FmnistError
from .cluster import _quiet_stderr, check_cluster
from .outputs import _table, _write_outputs
from .space import METRIC, _to_ray, check_space


def _trial(
    config: dict[str, Any], epochs: int, validation: int | float, data_dir: str | None
) -> None:
    """One trial: an ordinary run folder in Ray's trial folder, a report each epoch."""
    from ray import tune

    from ...training.callbacks import Callback
    from ...training.run_folder import RunFolder
    from ...training.trainer import Trainer
    from ..run import recorded

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
        from ..plots import draw_run

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
                    scheduler=asha,
                    # the limit is the search's: Tune ignores max_concurrent_trials (saying so)
                    # where a search generator is given
                    search_alg=BasicVariantGenerator(
                        random_state=seed, max_concurrent=max_concurrent or 0
                    ),
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
