"""`fmnist eject --to keras`: the programs of mlp, fast and one network of
every other layer type and setting (accurate's residual blocks and translation among them), run
as a plain script with fmnist unimportable, takes fmnist's first 20 steps (the same losses within
the recipe's tolerance) and saves weights fmnist loads and evaluates to the test loss the program
printed."""

import os

import pytest

from fmnist_core import models
from fmnist_core.testing.eject import CHECKED, check_ejected, other_layers

ON_TENSORFLOW = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
    reason="the ejected Keras program is compared on Keras' TensorFlow backend (tests-keras)",
)


@ON_TENSORFLOW
@pytest.mark.parametrize("model", CHECKED)
def test_ejected_program_takes_fmnists_steps(model, real_data_dir, tmp_path):
    assert model in models()
    figures = check_ejected(model, "keras", real_data_dir, tmp_path)
    print(model, figures)


@ON_TENSORFLOW
def test_the_other_layer_types_are_ejected_and_take_fmnists_steps(real_data_dir, tmp_path):
    """The built-in layer types and settings the checked recipes do not use (GELU, AvgPool2D,
    Dropout, GlobalAvgPool, a Residual with a projection; translation, erasing), in one network."""
    figures = check_ejected(other_layers(), "keras", real_data_dir, tmp_path, steps=20)
    print(figures)


@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow",
    reason="on TensorFlow the programs are compared step by step above",
)
def test_the_ejected_program_runs_on_this_keras_backend(real_data_dir, tmp_path):
    """The Keras program is Keras 3 code: on Keras' torch and JAX backends it trains, evaluates
    (its logits read with keras.ops.convert_to_numpy: np.asarray refused torch's tensors) and
    saves."""
    from fmnist_core import Trainer
    from fmnist_core.apps.eject import eject
    from fmnist_core.testing.eject import run_ejected

    (program,) = eject(Trainer(backend="numpy", model="cnn", verbose=0), ["keras"], tmp_path / "e")
    losses, outputs, printed = run_ejected(program, real_data_dir, steps=5)
    assert len(losses) == 5 and "Test accuracy:" in printed
    assert (outputs / "model.keras").is_file()
