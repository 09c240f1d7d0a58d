"""A third-party plugin (tests/plugins/fmnist_swish, installed as a real distribution on the
path) adds a layer type, its lowerings and a command; specs using it train, save and load."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fmnist_core import ConfigError, ModelSpec, Trainer, layer_types, plugins
from fmnist_core.testing import synthetic_dataset
from tests.plugins import install_example


def fmnist(*args, path, check=True):
    env = {"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin", "FMNIST_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert not check or out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.fixture
def with_swish(tmp_path, monkeypatch):
    """The example plugin installed and loaded in this process."""
    monkeypatch.syspath_prepend(str(install_example(tmp_path / "site")))
    monkeypatch.delenv("FMNIST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("FMNIST_PLUGINS", raising=False)
    plugins.reset()
    yield layer_types()["Swish"]
    plugins.reset()


def test_a_plugin_layer_trains_on_numpy_and_round_trips(with_swish, tmp_path):
    swish = with_swish
    from fmnist_core import Dense, Flatten

    assert (
        plugins.commands()["swish"].module == "fmnist_swish.command"
    )  # its command, registered too

    spec = ModelSpec("mine", [Flatten(), Dense(32), swish(beta=1.5), Dense(10)])
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    data = synthetic_dataset()
    trainer = Trainer(
        backend="numpy",
        model=spec,
        data=data,
        epochs=3,
        optimizer="adam",
        learning_rate=0.01,
        verbose=0,
    )
    history = trainer.fit()
    assert history[-1].loss < history[0].loss and trainer.evaluate().accuracy > 0.5
    path = trainer.save(tmp_path / "mine.safetensors")
    loaded = Trainer.load(path, data=data, verbose=0)
    np.testing.assert_array_equal(loaded.logits(data.test.images), trainer.logits(data.test.images))
    with pytest.raises(
        ConfigError, match=r"layer 2 \(Swish\): beta must be a number > 0, got -1.0"
    ):
        ModelSpec("bad", [Flatten(), swish(beta=-1.0), Dense(10)])


def test_plugin_layer_and_command_from_the_command_line(tmp_path, real_data_dir):
    site = install_example(tmp_path / "site")
    out = fmnist("layers", path=site)
    assert "Swish" in out.stdout and "Dense" in out.stdout
    assert fmnist("swish", "--beta", "1", path=site).stdout.split() == [
        "swish",
        "-0.2384",
        "0.0000",
        "1.7616",
    ]
    spec = tmp_path / "swish.json"
    spec.write_text(
        json.dumps(
            {
                "name": "swishy",
                "layers": [
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 32},
                    {"type": "Swish"},
                    {"type": "Dense", "units": 10},
                ],
            }
        )
    )
    fmnist(
        "train",
        "--backend",
        "numpy",
        "--model",
        spec,
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--data-dir",
        real_data_dir,
        "--out",
        tmp_path / "run",
        path=site,
    )
    evaluated = json.loads(
        fmnist(
            "evaluate",
            tmp_path / "run" / "weights.safetensors",
            "--json",
            "--data-dir",
            real_data_dir,
            path=site,
        ).stdout
    )
    assert evaluated["accuracy"] > 0.75
    # without the plugin the recorded architecture names a layer type nobody provides: one line
    without = fmnist(
        "evaluate",
        tmp_path / "run" / "weights.safetensors",
        "--data-dir",
        real_data_dir,
        path=tmp_path / "empty",
        check=False,
    )
    assert without.returncode == 1 and "Traceback" not in without.stderr
    assert (
        "unknown layer type 'Swish'" in without.stderr
        and len(without.stderr.strip().splitlines()) == 1
    )
