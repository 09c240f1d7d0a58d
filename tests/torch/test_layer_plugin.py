"""A third-party layer type (tests/plugins/fmnist_swish) trains on torch with the parity of the
built-in ones, and its weights move between torch, NumPy and the neutral format."""

import numpy as np
import pytest

from fmnist_core import Trainer, layer_types, plugins
from fmnist_core.testing import BackendConformance, synthetic_dataset
from tests.plugins import install_example


@pytest.fixture(scope="module")
def swish(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(install_example(tmp_path_factory.mktemp("site"))))
    mp.delenv("FMNIST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    mp.delenv("FMNIST_PLUGINS", raising=False)
    plugins.reset()
    yield layer_types()["Swish"]
    mp.undo()
    plugins.reset()


class TorchSwish(BackendConformance):
    backend = "torch"


def test_torch_lowers_the_plugin_layer_with_parity(swish):
    suite, data = TorchSwish(), synthetic_dataset()
    assert plugins.get_backend("torch").lowers("Swish")
    from fmnist_core import ModelSpec, Optimizer

    for number, stack in enumerate(swish.examples()):
        spec = ModelSpec(f"swish-example-{number}", stack)
        suite._compare_with_numpy(
            data,
            spec,
            Optimizer("sgd", momentum=0.9, nesterov=True, weight_decay=5e-4),
            schedule="cosine",
            lr=0.01,
        )


def test_plugin_layer_weights_move_between_backends(swish, tmp_path):
    from fmnist_core import Dense, Flatten, ModelSpec

    data = synthetic_dataset()
    spec = ModelSpec("mine", [Flatten(), Dense(32), swish(), Dense(10)])
    trainer = Trainer(backend="torch", model=spec, data=data, epochs=1, verbose=0)
    trainer.fit()
    moved = Trainer.load(
        trainer.save(tmp_path / "mine.safetensors"), backend="numpy", data=data, verbose=0
    )
    np.testing.assert_allclose(
        moved.logits(data.test.images), trainer.logits(data.test.images), rtol=1e-5, atol=1e-5
    )


def test_a_plugin_layer_with_its_text_is_ejected_and_takes_fmnists_steps(
    swish, real_data_dir, tmp_path
):
    """The plugin's ejection table adds Swish's line to the PyTorch program: the program, run
    without fmnist, takes fmnist-torch's first 10 steps (mlp's tolerance)."""
    from fmnist_core import Conv2D, Dense, Flatten, ModelSpec
    from fmnist_core.testing.eject import check_ejected

    spec = ModelSpec(
        "swishy",
        [Conv2D(8, 3, stride=2), swish(beta=1.5), Flatten(), Dense(32), swish(), Dense(10)],
    )
    figures = check_ejected(spec, "torch", real_data_dir, tmp_path, steps=10)
    program = (tmp_path / "ejected" / "torch" / "swishy.py").read_text()
    assert "x = x * torch.sigmoid(1.5 * x)" in program and "torch.sigmoid(1.0 * x)" in program
    assert figures["largest share of the bound"] <= 1.0
