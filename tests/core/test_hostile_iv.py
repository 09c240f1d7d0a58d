"""Inputs built to hurt, part 4 (issue 42), where no framework is needed: names and values from
shared files written into program text, options named as the API's own arguments, megabyte keys,
tampered checkpoint histories, settings that cannot train. Each is a one-line error (exit 1, no
traceback) or correct work; nothing the file says is run."""

import json
import math
import subprocess
import sys
import time

import pytest

from fmnist_core import ConfigError, ModelSpec, Trainer
from fmnist_core.spec.layers import Dense, Flatten


def cli(*args, cwd=None, timeout=120):
    done = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    return done.returncode, done.stdout + done.stderr


def one_line(code: int, text: str) -> str:
    assert code == 1, text
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("fmnist: error:")]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize(
    "name",
    ['x"""\nimport os\n"""', "../../escaped", "/etc/passwd", ".hidden", "a b", "-rf", "x" * 65, ""],
)
def test_a_model_name_that_is_not_a_plain_name_is_refused(name):
    with pytest.raises(ConfigError, match="model name"):
        ModelSpec(name, [Flatten(), Dense(10)])


@pytest.mark.parametrize(
    "name", ['"]; import os; os.system("echo hi"); x=["', "a.b c", "1st", "a..b", "a/b", "é\n"]
)
def test_a_layer_name_that_is_not_identifiers_is_refused(name):
    with pytest.raises(ConfigError, match="layer name"):
        ModelSpec("m", [Flatten(), Dense(10, name=name)])


def test_plain_names_are_kept():
    spec = ModelSpec("tiny-resnet.v2", [Flatten(), Dense(10, name="head_1")])
    assert spec.name == "tiny-resnet.v2" and spec.layers[1].name == "head_1"


def test_a_spec_file_with_a_hostile_name_is_one_line(tmp_path):
    spec = {
        "name": "../../escaped",
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}],
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    line = one_line(*cli("eject", "--model", path, "--out", tmp_path / "out"))
    assert "model name" in line
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escaped.py").exists()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.1"])
@pytest.mark.parametrize("setting", ["gamma", "min_fraction", "pct_start", "div_factor"])
def test_schedule_values_that_are_not_finite_numbers(setting, value):
    with pytest.raises(ConfigError, match=setting):
        Trainer("numpy", "mlp", schedule={"kind": "onecycle", setting: value}, verbose=0)


@pytest.mark.parametrize("setting", ["momentum", "weight_decay", "beta1", "eps"])
def test_optimizer_values_that_are_not_finite_numbers(setting):
    kind = "sgd" if setting in ("momentum",) else "adam"
    with pytest.raises(ConfigError, match=setting):
        Trainer("numpy", "mlp", optimizer={"kind": kind, setting: math.nan}, verbose=0)


def test_a_learning_rate_that_cannot_train_is_one_line_with_no_warning(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("learning_rate = 1e308\n")
    code, text = cli("train", "--config", path, "--backend", "numpy", "--out", tmp_path / "r")
    line = one_line(code, text)
    assert "learning_rate" in line and "Warning" not in text


@pytest.mark.parametrize("key", ["model", "data_dir", "verbose", "callbacks", "epochs"])
def test_options_named_as_the_apis_arguments(tmp_path, key):
    path = tmp_path / "run.toml"
    path.write_text(f'[options]\n{key} = "cnn"\n')
    line = one_line(*cli("train", "--config", path, "--backend", "numpy", "--out", tmp_path / "r"))
    assert repr(key) in line and "options" in line
    line = one_line(*cli("train", "--option", f"{key}=cnn", "--backend", "numpy", "--out",
                         tmp_path / "r2"))  # fmt: skip
    assert repr(key) in line


def test_trainer_arguments_listed_for_options_are_trainers_own():
    import inspect

    from fmnist_core.training.config import TRAINER_ARGUMENTS

    named = inspect.signature(Trainer.__init__).parameters
    declared = {n for n, p in named.items() if p.kind is not p.VAR_KEYWORD and n != "self"}
    assert set(TRAINER_ARGUMENTS) == declared


def test_a_megabyte_unknown_key_is_refused_in_a_second(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"x" * 1_000_000: 1}))
    started = time.monotonic()
    line = one_line(*cli("train", "--config", path, "--backend", "numpy"))
    assert time.monotonic() - started < 30  # bounded: it took over a minute before
    assert "no setting" in line and len(line) < 1000


@pytest.mark.parametrize(
    "rows",
    [
        [{"epoch": "0", "loss": 1.0, "accuracy": 0.5, "seconds": 1, "steps": 1, "items": 1}],
        [{"epoch": 0, "loss": None, "accuracy": 0.5, "seconds": 1, "steps": 1, "items": 1}],
        [{"epoch": 0, "loss": "x", "accuracy": 0.5, "seconds": 1, "steps": 1, "items": 1}],
        [None],
        "not rows",
    ],
)
def test_a_checkpoint_whose_history_rows_are_not_numbers(tmp_path, real_data_dir, rows):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    run = tmp_path / "run"
    trainer = Trainer("numpy", "mlp", data_dir=real_data_dir, epochs=1, verbose=0)
    trainer.fit(checkpoint_dir=run)
    path = run / "checkpoint.safetensors"
    with safe_open(path, "np") as handle:
        metadata = handle.metadata()
    history = json.loads(metadata["history"])
    history["epochs"] = rows
    save_file(load_file(path), path, {**metadata, "history": json.dumps(history)})
    with pytest.raises(Exception, match="history") as caught:
        Trainer.resume(run)
    assert type(caught.value).__name__ == "WeightsError"
    line = one_line(*cli("train", "--resume", run, "--epochs", "2"))
    assert "history" in line


@pytest.mark.parametrize(
    "labels, message",
    [
        (["a", 1, "b", 2], "Mix of label input types"),
        ([1, None, 2, 3], "contains None"),
        ([0, 1, math.nan, 2], "contains NaN"),
        ([0.5, 1.5, 2.5, 3.5], "Unknown label type: continuous"),
    ],
)
def test_the_estimator_checks_labels_as_scikit_learn_does(labels, message):
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from fmnist_core.sklearn import FashionMNISTClassifier

    with pytest.raises(ValueError, match=message):
        mixed = any(isinstance(v, str) for v in labels) or None in labels
        y = np.array(labels, dtype=object) if mixed else np.array(labels)
        FashionMNISTClassifier(epochs=1).fit(np.zeros((4, 784), np.uint8), y)


def test_the_estimator_refuses_zero_samples():
    import numpy as np

    pytest.importorskip("sklearn")
    from fmnist_core.sklearn import FashionMNISTClassifier

    with pytest.raises(ValueError, match="0 sample"):
        FashionMNISTClassifier().fit(np.zeros((0, 784), np.uint8), np.array([], int))


def _broken_targets(returned):
    from fmnist_core import hookimpl

    class Broken:
        @hookimpl
        def fmnist_export_targets(self):
            if isinstance(returned, Exception):
                raise returned
            return returned

    return Broken()


def _target(name="mine", suffix=".mine", requires=()):
    from fmnist_core import ExportTarget

    return ExportTarget(name=name, description="d", suffix=suffix, runtime="r",
                        write=print, load=print, read_metadata=print, stamp=print,
                        requires=requires)  # fmt: skip


@pytest.mark.parametrize(
    "returned, said",
    [
        (RuntimeError("boom"), "RuntimeError: boom"),
        ("garbage", "not a list"),
        ([42], "not an ExportTarget"),
        ([_target(requires="numpy")], "requires"),
        ([_target(suffix="")], "suffix"),
        ([_target(suffix=".safetensors")], "suffix '.safetensors'"),
        ([_target(name="a b")], "names are"),
    ],
)
def test_a_broken_export_target_plugin_is_left_out_and_named(returned, said, capsys):
    from fmnist_core import plugins
    from fmnist_core.cli import main

    manager = plugins.get_plugin_manager()
    plugin = _broken_targets(returned)
    manager.register(plugin, name="broken-targets")
    try:
        targets = plugins.export_targets()
        assert all(t.plugin != "broken-targets" for t in targets.values())
        failures = {f.name: f.error for f in plugins.plugin_failures()}
        assert said in failures["broken-targets"]
        assert main(["export", "--list"]) == 0
        assert main(["backends"]) == 0
        assert "broken-targets" in capsys.readouterr().out
    finally:
        manager.unregister(plugin)
        plugins.reset()
