"""Sweeps on Ray Tune, 2 CPUs, Ray started and stopped by the tests."""

import json
import subprocess
import sys

import pytest

from fmnist_core import ConfigError
from fmnist_core.apps.tune import check_space, parse_space, run_sweep

SPACE = {
    "backend": "numpy",
    "learning_rate": ("grid", 0.02, 0.3),
    "batch_size": ("grid", 64, 128),
    "steps_per_epoch": 300,  # what is tested is the sweep, not the training: short epochs
}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from tests.conftest import REAL_DATA

    return run_sweep(
        SPACE,
        epochs=2,
        validation=5000,
        out=tmp_path_factory.mktemp("s") / "plain",
        num_cpus=2,
        data_dir=str(REAL_DATA),
    )


def test_every_trial_is_a_run_folder_and_the_table_is_sorted(sweep):
    from pathlib import Path

    rows = sweep.rows
    assert len(rows) == 4 and all(r["status"] == "done" and r["epochs"] == 2 for r in rows)
    accuracies = [r["val_accuracy"] for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in rows:
        folder = Path(row["path"])
        for name in ("config.json", "history.json", "weights.safetensors"):
            assert (folder / name).is_file(), (folder, name)
        config = json.loads((folder / "config.json").read_text())
        assert config["validation"] == 5000 and config["learning_rate"] == row["learning_rate"]
        assert not (folder / "evaluation.json").exists()  # trials never touch the test set
    assert (sweep.folder / "sweep.csv").read_text().count("\n") == 5 and (
        sweep.folder / "sweep.png"
    ).is_file()
    assert sweep.best["trial"] == rows[0]["trial"] and 0.75 < sweep.best["test_accuracy"] < 0.9
    assert (sweep.folder / "best.safetensors").is_file()
    print(f"sweep of 4 trials x 2 epochs: {sweep.seconds:.1f} s")


def test_same_seed_same_table(sweep, tmp_path, real_data_dir):
    """Two of the four trials again, in another sweep: the same rows (a trial's result depends
    on its settings and seed, not on the sweep around it)."""
    subset = {**SPACE, "learning_rate": ("grid", 0.02, 0.3), "batch_size": ("grid", 64)}
    again = run_sweep(
        subset, epochs=2, out=tmp_path / "again", num_cpus=2, data_dir=str(real_data_dir)
    )

    def plain(row):
        return {k: v for k, v in row.items() if k not in ("trial", "path")}

    first = {(r["learning_rate"], r["batch_size"]): plain(r) for r in sweep.rows}
    assert len(again.rows) == 2
    for row in again.rows:
        assert plain(row) == first[(row["learning_rate"], row["batch_size"])], row


def test_asha_stops_some_trials_early_and_failures_are_recorded(tmp_path, real_data_dir, capfd):
    # good rates first: ASHA stops a trial that falls below the better half of those before it
    space = {
        "backend": "numpy",
        "learning_rate": ("grid", 0.2, 0.1, 0.002, 0.001, 1e30),
        "batch_size": 64,
        "steps_per_epoch": 300,
    }
    result = run_sweep(
        space,
        epochs=4,
        validation=5000,
        scheduler="asha",
        max_concurrent=1,
        out=tmp_path / "asha",
        num_cpus=2,
        data_dir=str(real_data_dir),
    )
    # max_concurrent=1 is the search's limit (Tune ignored it in TuneConfig, saying so)
    said = capfd.readouterr()
    assert "will be ignored" not in said.out + said.err
    statuses = {r["learning_rate"]: r["status"] for r in result.rows}
    assert statuses[1e30].startswith("failed: TrainingError: the loss became nan"), statuses
    assert any(s.startswith("stopped early") for s in statuses.values()), statuses
    assert "stopped early" in (result.folder / "sweep.md").read_text()


@pytest.mark.parametrize(
    "space, message",
    [
        ({"lr": ("loguniform", 0.01, 0.5)}, "'lr' is not a Trainer argument"),
        ({"learning_rate": ("loguniform", 0.5, 0.01)}, "needs two numbers low < high"),
        ({"learning_rate": ("loguniform", 0, 0.5)}, "needs low > 0"),
        ({"batch_size": ("choice",)}, "needs at least one value"),
    ],
)
def test_invalid_space_is_one_line_before_ray(space, message):
    with pytest.raises(ConfigError, match=message):
        check_space(space)


def test_cli_parse_and_error():
    assert parse_space(
        ["learning_rate=loguniform:0.01:0.5", "batch_size=choice:32,64", "epochs=3", "model=mlp"]
    ) == {
        "learning_rate": ("loguniform", 0.01, 0.5),
        "batch_size": ("choice", 32, 64),
        "epochs": 3,
        "model": "mlp",
    }
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "tune", "--space", "lrate=uniform:0.1:0.2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        out.returncode == 1
        and out.stderr.count("\n") == 1
        and "'lrate' is not a Trainer argument" in out.stderr
    )
