"""``TrainConfig``: one list of settings, from which every other list is derived, and the one
check of each value (the API, the command line, config files, scikit-learn and tune alike)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import pytest

from fmnist_core import ConfigError, RunFolder, TrainConfig, Trainer
from fmnist_core.cli import build_parser
from fmnist_core.cli.settings import RUN_KEYS, read_file
from fmnist_core.training.config import NAMES, RECORDED, settings


def test_every_view_is_derived_from_the_fields():
    from fmnist_core.apps.tune import _trainer_arguments

    parser = build_parser()
    train = next(
        action.choices["train"] for action in parser._actions if getattr(action, "choices", None)
    )
    dests = {a.dest for a in train._actions}
    assert set(NAMES) <= dests  # a flag per setting
    assert set(NAMES) <= _trainer_arguments()  # a tune space may use each
    assert set(RECORDED) == set(TrainConfig().to_dict())
    sklearn = pytest.importorskip("sklearn")
    assert sklearn
    from fmnist_core.sklearn import FashionMNISTClassifier

    params = set(FashionMNISTClassifier().get_params())
    assert params == {*NAMES, "backend", "model", "options", "verbose"}


def test_resolve_takes_the_recipe_and_round_trips():
    from fmnist_core import get_model

    recipe = get_model("cnn").recipe
    config = TrainConfig(epochs=3).resolve(recipe)
    assert config.epochs == 3 and config.batch_size == recipe.get("batch_size") == 128
    assert config.optimizer.kind == recipe.get("optimizer") == "adam"
    assert config.tta is False and config.label_smoothing == 0.0  # not given: the article's
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("seed", 2**64, "seed must be an integer in 0..4294967295"),
        ("seed", -1, "seed must be an integer"),
        ("tta", "false", "tta must be true or false"),
        ("evaluate_each_epoch", "yes", "evaluate_each_epoch must be true or false"),
        ("max_memory_gb", math.nan, "max_memory_gb must be a number > 0"),
        ("learning_rate", math.inf, "learning_rate must be a number in (0, 1e+32)"),
        ("epochs", 2.5, "epochs must be an integer"),
        ("label_smoothing", 1.0, "label_smoothing must be a number in [0, 1)"),
        ("init", "random", "init must be one of core, framework"),
        ("optimizer", 3, "optimizer must be a name"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        TrainConfig(**{name: value})
    assert "\n" not in str(err.value)


def test_an_unknown_setting_suggests_the_near_one():
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        TrainConfig.from_dict({"learning_rat": 0.1})


@pytest.mark.parametrize(
    "text, message",
    [
        ("seed = 'one'\n", "the config file .* seed must be an integer"),
        ("tta = 'false'\n", "tta must be true or false"),
        ("[options]\nepochs = 3\n", "option.s. 'epochs' are named as settings"),
        ("space = 3\nbackend = 'numpy'\n", "has no setting 'space'"),
        ("workers = 'two'\n", "workers must be an integer"),
        ("[" + "a." * 5000 + "b]\n", "nests too deeply"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply"),
    ],
)
def test_a_hostile_config_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        read_file(str(path))
    assert "\n" not in str(err.value)


def test_special_and_oversized_config_files_are_refused_unread(tmp_path):
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_file("/dev/zero")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_file(str(fifo))  # would block forever if it were opened
    sparse = tmp_path / "big.json"
    with open(sparse, "wb") as handle:
        handle.truncate(2 * 2**30)  # 2 GiB that costs no disk
    with pytest.raises(ConfigError, match="larger than"):
        read_file(str(sparse))


def test_the_cli_gives_the_same_one_line_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("tta = 'false'\n")
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "train", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "tta must be true or false" in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_a_config_json_of_fmnist_0_3_still_loads(tmp_path):
    # what `fmnist train` of 0.3 wrote (its keys and value forms)
    old = {
        "backend": "numpy",
        "model": "mlp",
        "epochs": 1,
        "batch_size": 64,
        "learning_rate": 0.1,
        "seed": 0,
        "optimizer": {},
        "schedule": {},
        "init": "core",
        "log_every": 100,
        "steps_per_execution": 100,
        "validation": None,
        "evaluate_each_epoch": False,
        "data": "fashion-mnist",
        "augment": "none",
        "label_smoothing": 0.0,
        "ema": 0.0,
        "tta": False,
        "workers": 1,
        "options": {},
        "device": "cpu",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    settings_ = read_file(str(path))
    given = {k: v for k, v in settings_.items() if k in NAMES}
    trainer = Trainer(backend="numpy", model="mlp", **given)
    assert trainer.config.optimizer.kind == "sgd" and trainer.epochs == 1


def test_run_folder_records_are_read_through_one_bounded_reader(tmp_path):
    folder = RunFolder(tmp_path)
    (tmp_path / RunFolder.CONFIG).symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file"):
        folder.read_config()
    (tmp_path / RunFolder.HISTORY).write_text(json.dumps({"epochs": [{"epoch": "x"}]}))
    with pytest.raises(ConfigError, match="rows fmnist cannot read"):
        folder.read_history()


def test_the_model_card_has_a_row_per_recorded_setting():
    from fmnist_core.apps.model_card import _settings_table

    class Fake:
        config = TrainConfig(epochs=1, batch_size=8, learning_rate=0.1)

    rows = _settings_table(Fake())
    assert all(any(f"`{s.name}`" in row for row in rows) for s in settings() if s.recorded)
    assert RUN_KEYS  # the config file's other keys are listed once too


def test_lookahead_of_one_step_is_sgd_at_alpha_times_the_rate():
    # a setting added as one TrainConfig field and the loop that implements it: one step of
    # plain SGD, then half-way back, is SGD at half the learning rate
    from fmnist_core.testing import synthetic_dataset

    data = synthetic_dataset()
    common = dict(backend="numpy", data=data, epochs=1, batch_size=32, verbose=0, seed=4)
    ahead = Trainer(**common, learning_rate=0.1, lookahead_steps=1, lookahead_alpha=0.5)
    plain = Trainer(**common, learning_rate=0.05)
    ahead.fit(), plain.fit()
    for name, value in plain.params.items():
        assert abs(ahead.params[name] - value).max() < 1e-5, name
    several = Trainer(**common, learning_rate=0.1, lookahead_steps=3)
    several.fit()
    assert any(abs(several.params[n] - v).max() > 1e-3 for n, v in plain.params.items())
    assert (
        "--lookahead-steps"
        in subprocess.run(
            [sys.executable, "-m", "fmnist_core.cli", "train", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )


def test_a_resume_that_would_train_nothing_and_a_bad_checkpoint_are_one_line(tmp_path):
    from fmnist_core import WeightsError, read_weights, write_weights
    from fmnist_core.testing import synthetic_dataset

    run = tmp_path / "run"
    trainer = Trainer(backend="numpy", data=synthetic_dataset(), epochs=1, verbose=0)
    trainer.fit(checkpoint_dir=run)
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "train", "--resume", str(run), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "has done 1 epochs already" in out.stderr
    assert "Traceback" not in out.stderr
    checkpoint = run / RunFolder.CHECKPOINT
    weights = read_weights(checkpoint)
    weights.metadata["epochs_done"] = "-3"
    write_weights(checkpoint, weights, "safetensors")
    with pytest.raises(WeightsError, match="history or epoch count fmnist cannot read"):
        Trainer.resume(run, data=synthetic_dataset(), verbose=0)


def test_a_damaged_config_json_does_not_block_resuming_the_checkpoint(tmp_path):
    # the backend to relaunch is read from config.json when it can be; the checkpoint has it too
    from fmnist_core.apps.run import recorded_backend

    (tmp_path / RunFolder.CONFIG).write_text('{"backend": "numpy"}')
    assert recorded_backend(str(tmp_path)) == "numpy"
    (tmp_path / RunFolder.CONFIG).write_text("{not json")
    assert recorded_backend(str(tmp_path)) is None
    (tmp_path / RunFolder.CONFIG).unlink()
    os.mkfifo(tmp_path / RunFolder.CONFIG)
    assert recorded_backend(str(tmp_path)) is None  # refused unopened: no hang
