"""Tracking callbacks, read back with each tool's own reader."""

import csv
import json
import subprocess
import sys

from fmnist_core import Trainer
from fmnist_core.testing import synthetic_dataset
from fmnist_core.training.tracking import CSVLogger, MLflowLogger, TensorBoard


def train(tmp_path, *callbacks):
    trainer = Trainer(
        backend="numpy",
        data=synthetic_dataset(),
        epochs=3,
        batch_size=32,
        verbose=0,
        validation=64,
        log_every=5,
        callbacks=list(callbacks),
    )
    return trainer, trainer.fit()


def test_csv(tmp_path):
    _, history = train(tmp_path, CSVLogger(tmp_path / "h.csv"))
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["val_accuracy"]) for r in rows] == history.column("val_accuracy")


def test_tensorboard_read_back_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, history = train(tmp_path, TensorBoard(tmp_path / "tb"))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    loss = events.Scalars("epoch/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [round(e.value, 5) for e in loss] == [round(v, 5) for v in history.column("loss")]
    assert len(events.Scalars("epoch/val_accuracy")) == 3 and events.Scalars("batch/loss")


def test_mlflow_read_back_by_its_client(tmp_path):
    import mlflow

    trainer, history = train(tmp_path, MLflowLogger(tmp_path / "mlruns", run_name="test"))
    client = mlflow.tracking.MlflowClient((tmp_path / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("fmnist").experiment_id])
    assert run.data.params["backend"] == "numpy" and json.loads(run.data.params["optimizer"]) == {
        "kind": "sgd"
    }
    values = [m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
    assert values == history.column("val_accuracy")
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["weights.safetensors"]
    assert run.data.metrics["test_accuracy"] == trainer.evaluate().accuracy


def test_mlflow_store_read_by_a_plain_client_in_a_fresh_process(tmp_path):
    """As the README says: MLflow 3's client reads the file store with
    MLFLOW_ALLOW_FILE_STORE=true (fmnist sets it only inside its own process)."""
    import os

    train(tmp_path, MLflowLogger(tmp_path / "mlruns", run_name="plain"))
    probe = (
        "import sys, mlflow; c = mlflow.tracking.MlflowClient(sys.argv[1]); "
        "(r,) = c.search_runs([c.get_experiment_by_name('fmnist').experiment_id]); "
        "print(r.info.run_name, r.data.metrics['test_accuracy'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_FILE_STORE"}
    out = subprocess.run(
        [sys.executable, "-c", probe, (tmp_path / "mlruns").resolve().as_uri()],
        env={**env, "MLFLOW_ALLOW_FILE_STORE": "true"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    name, accuracy = out.stdout.split()
    assert name == "plain" and 0.0 <= float(accuracy) <= 1.0


def test_cli_log_flag(tmp_path, real_data_dir):
    run = tmp_path / "run"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "train",
            "--backend",
            "numpy",
            "--epochs",
            "1",
            "--out",
            str(run),
            "--data-dir",
            str(real_data_dir),
            "--quiet",
            "--no-plots",
            "--log",
            "csv,tensorboard",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert (run / "history.csv").is_file() and any((run / "tensorboard").iterdir())
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "train",
            "--backend",
            "numpy",
            "--log",
            "wandb",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode == 1
        and "unknown logger 'wandb'; known: csv, tensorboard, mlflow" in bad.stderr
    )
