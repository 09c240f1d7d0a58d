"""`fmnist eject --to torch`: the programs of mlp, fast and accurate (which use every
layer type and setting of the five recipes), run as a plain script with fmnist
unimportable, takes fmnist's first 20 steps (the same losses within the recipe's tolerance) and
saves weights fmnist loads and evaluates to the test loss the program printed."""

import pytest

from fmnist_core import models
from fmnist_core.testing.eject import CHECKED, check_ejected


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
