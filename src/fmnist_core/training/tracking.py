"""Experiment tracking callbacks: CSV, TensorBoard (tensorboardX) and MLflow (local file store).

    Trainer(callbacks=[CSVLogger("run/history.csv"), TensorBoard("run/tensorboard"),
                       MLflowLogger("run/mlruns")])
    fmnist train --log csv,tensorboard,mlflow      # into the run folder

TensorBoard needs ``fmnist-core[tensorboard]`` and MLflow ``fmnist-core[mlflow]``; each is
imported when its callback starts, with a one-line error naming the extra when it is missing.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from ..errors import FmnistError
from .callbacks import Callback
from .run_folder import RunFolder

EPOCH_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
)


def _metrics(record) -> dict[str, float]:
    return {
        name: float(getattr(record, name))
        for name in EPOCH_COLUMNS[1:]
        if getattr(record, name) is not None
    }


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FmnistError(
            f"this logger needs {module}", fix=f'pip install "fmnist-core[{extra}]"'
        ) from exc


class CSVLogger(Callback):
    """One row per epoch (``EPOCH_COLUMNS``), flushed as it is written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, trainer):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or trainer.history.epochs == []
        self.handle = self.path.open("w" if fresh else "a", newline="")
        self.writer = csv.DictWriter(self.handle, EPOCH_COLUMNS)
        if fresh:
            self.writer.writeheader()

    def on_epoch_end(self, trainer, record):
        self.writer.writerow({"epoch": record.epoch + 1, **_metrics(record)})
        self.handle.flush()

    def on_train_end(self, trainer, history):
        self.handle.close()


class TensorBoard(Callback):
    """Scalars per epoch (``epoch/loss``, ``epoch/val_accuracy``…) and per progress report
    (``batch/loss``), written by tensorboardX, readable by TensorBoard."""

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)

    def on_train_begin(self, trainer):
        tensorboardx = _require("tensorboardX", "tensorboard")
        self.writer = tensorboardx.SummaryWriter(str(self.log_dir))
        self.writer.add_text("config", json.dumps(trainer.recorded()), 0)

    def on_progress(self, trainer, record, batches):
        self.writer.add_scalar("batch/loss", record.loss, record.epoch * batches + record.batch)
        self.writer.add_scalar(
            "batch/accuracy", record.accuracy, record.epoch * batches + record.batch
        )

    def on_epoch_end(self, trainer, record):
        for name, value in _metrics(record).items():
            self.writer.add_scalar(f"epoch/{name}", value, record.epoch + 1)
        self.writer.flush()

    def on_train_end(self, trainer, history):
        self.writer.close()


class MLflowLogger(Callback):
    """An MLflow run: the trainer's config as params, per-epoch metrics, the weights as an artifact.

    ``tracking_uri`` defaults to a local file store in ``folder`` (no server needed; MLflow 3's
    own client reads it with ``MLFLOW_ALLOW_FILE_STORE=true`` in its environment). At the end
    the dataset's test set is evaluated and logged (``test_accuracy``, ``test_loss``) unless
    ``evaluate_test=False`` or the run trained on your own arrays.
    """

    def __init__(
        self,
        folder: str | Path = "mlruns",
        experiment: str = "fmnist",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        evaluate_test: bool = True,
    ):
        self.folder, self.experiment, self.run_name = Path(folder), experiment, run_name
        self.evaluate_test = evaluate_test
        self.tracking_uri = tracking_uri or self.folder.resolve().as_uri()

    def on_train_begin(self, trainer):
        import os

        mlflow = self.mlflow = _require("mlflow", "mlflow")
        if self.tracking_uri.startswith(
            "file:"
        ):  # MLflow 3 keeps the file store, in maintenance mode
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(self.experiment)
        self.run = mlflow.start_run(run_name=self.run_name)
        flat = {
            k: json.dumps(v) if isinstance(v, (dict, list)) else v
            for k, v in trainer.recorded().items()
        }
        mlflow.log_params(flat)

    def on_epoch_end(self, trainer, record):
        self.mlflow.log_metrics(_metrics(record), step=record.epoch + 1)

    def on_train_end(self, trainer, history):
        if self.evaluate_test and not trainer.run_data.arrays_digest:  # the dataset's test set
            result = trainer.evaluate()
            self.mlflow.log_metrics({"test_accuracy": result.accuracy, "test_loss": result.loss})
        with tempfile.TemporaryDirectory() as folder:
            self.mlflow.log_artifact(str(trainer.save(RunFolder(folder).weights)))
        self.mlflow.end_run()


LOGGERS = {
    "csv": lambda run: CSVLogger(RunFolder(run) / RunFolder.CSV_LOG),
    "tensorboard": lambda run: TensorBoard(run / "tensorboard"),
    "mlflow": lambda run: MLflowLogger(run / "mlruns"),
}


def loggers_for(names: str, run: Path) -> list[Callback]:
    """``--log csv,tensorboard`` → callbacks writing into the run folder."""
    from ..errors import ConfigError

    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in LOGGERS]
    if unknown:
        raise ConfigError(
            f"unknown logger {unknown[0]!r}; known: {', '.join(LOGGERS)}",
            fix="e.g. --log csv,tensorboard",
        )
    return [LOGGERS[n](run) for n in chosen]
