"""`fmnist eject --to torch`: the programs of mlp, fast and one network of
every other layer type and setting (accurate's residual blocks and translation among them), run
as a plain script with fmnist unimportable, takes fmnist's first 20 steps (the same losses within
the recipe's tolerance) and saves weights fmnist loads and evaluates to the test loss the program
printed."""

import os
from pathlib import Path

import pytest

from fmnist_core import models
from fmnist_core.testing.eject import CHECKED, check_ejected, other_layers


@pytest.mark.parametrize("model", CHECKED)
def test_ejected_program_takes_fmnists_steps(model, real_data_dir, tmp_path):
    assert model in models()
    figures = check_ejected(model, "torch", real_data_dir, tmp_path)
    print(model, figures)


def test_a_run_folder_is_ejected_with_its_trained_weights(real_data_dir, tmp_path):
    import numpy as np
    import torch

    from fmnist_core import Trainer
    from fmnist_core.cli import main

    run = tmp_path / "run"
    assert main(["train", "--backend", "numpy", "--epochs", "1", "--out", str(run),
                 "--data", str(real_data_dir)]) == 0  # fmt: skip
    assert main(["eject", str(run), "--to", "torch", "--out", str(tmp_path / "ejected")]) == 0
    shipped = torch.load(tmp_path / "ejected" / "torch" / "initial.pth", weights_only=True)
    trained = Trainer.load(run, verbose=0).params
    np.testing.assert_array_equal(shipped["sequence.1.weight"].numpy(), trained["fc1.weight"].T)
    untrained = Trainer(model="mlp", backend="numpy", verbose=0).params["fc1.weight"]
    assert not np.array_equal(trained["fc1.weight"], untrained)


def test_with_torch_alone_eject_writes_torch_and_says_what_it_skipped(tmp_path):
    """tests-torch installs fmnist-torch only: the default --to is what is installed."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("fmnist_tf") or importlib.util.find_spec("fmnist_keras"):
        pytest.skip("needs an environment with fmnist-torch alone (nox -s tests-torch)")

    def fmnist(*args):
        done = subprocess.run([sys.executable, "-m", "fmnist_core.cli", *map(str, args)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        return done.returncode, done.stdout, done.stderr

    code, out, err = fmnist("eject", "--model", "mlp", "--out", tmp_path / "ej")
    assert code == 0, err
    assert "skipped TensorFlow, Keras" in out and "fmnist-core[tf,keras]" in out
    assert sorted(p.name for p in (tmp_path / "ej").iterdir()) == [".fmnist-written", "torch"]
    assert (tmp_path / "ej" / "torch" / "mlp.py").is_file()
    for to in ("tf", "all"):
        code, out, err = fmnist("eject", "--model", "mlp", "--to", to, "--out", tmp_path / to)
        assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "not installed; nothing was written" in err and "pip install" in err
        assert not (tmp_path / to).exists()


def test_eject_never_replaces_what_it_did_not_write(tmp_path):
    from fmnist_core import StorageError, Trainer
    from fmnist_core.apps.eject import eject

    trainer = Trainer(backend="numpy", model="mlp", verbose=0)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(StorageError, match="did not write"):
        eject(trainer, ["torch"], mine)
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    out = tmp_path / "out"
    eject(trainer, ["torch"], out)
    (out / "torch" / "mlp.py").write_text("# edited")
    eject(trainer, ["torch"], out)  # its own earlier output: replaced whole
    assert (out / "torch" / "mlp.py").read_text() != "# edited"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing staged left
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask
    assert ((out / "torch" / "mlp.py").stat().st_mode & 0o777) == 0o666 & ~umask


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute"])
def test_a_run_folder_naming_a_path_writes_nothing_outside_out(tmp_path, name, real_data_dir):
    import json
    import subprocess
    import sys

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from fmnist_core.cli import main

    run = tmp_path / "run"
    assert main(["train", "--backend", "numpy", "--epochs", "1", "--out", str(run),
                 "--data", str(real_data_dir)]) == 0  # fmt: skip
    path = run / "weights.safetensors"
    with safe_open(path, "np") as handle:
        metadata = handle.metadata()
    architecture = json.loads(metadata["architecture"])
    architecture["name"] = name
    tampered = {**metadata, "architecture": json.dumps(architecture), "model": name}
    save_file(load_file(path), path, tampered)
    done = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "eject", str(run), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1 and "model name" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists() and not Path("/tmp/absolute.py").exists()


def test_the_other_layer_types_are_ejected_and_take_fmnists_steps(real_data_dir, tmp_path):
    """The built-in layer types and settings the checked recipes do not use (GELU, AvgPool2D,
    Dropout, GlobalAvgPool, a Residual with a projection; translation, erasing), in one network."""
    figures = check_ejected(other_layers(), "torch", real_data_dir, tmp_path, steps=20)
    print(figures)
