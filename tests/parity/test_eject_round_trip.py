"""A user's own plain models through `fmnist eject`: an `nn.Sequential` imported with
`ModelSpec.from_torch`, ejected to Keras, takes the same steps as the torch original (its ejected
PyTorch program and fmnist's torch backend); `ModelSpec.from_keras` reads a `keras.Sequential`
with Keras' BatchNorm momentum converted; layers fmnist does not know are named."""

import numpy as np
import pytest

from fmnist_core import ConfigError, ModelSpec, Trainer, load_dataset
from fmnist_core.apps.eject import eject
from fmnist_core.testing.eject import fmnist_losses, run_ejected, with_fewer_test_images


def test_a_torch_sequential_ejected_to_keras_takes_the_torch_steps(real_data_dir, tmp_path):
    from torch import nn

    original = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8, momentum=0.2, eps=1e-3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    spec = ModelSpec.from_torch(original, name="mine")
    batch_norm = spec.layers[1]
    assert (batch_norm.momentum, batch_norm.eps) == (0.2, 1e-3)
    data = load_dataset(real_data_dir)
    trainer = Trainer(backend="numpy", model=spec, data=data, verbose=0)
    programs = eject(trainer, ["torch", "keras"], tmp_path / "ejected")
    fewer = with_fewer_test_images(real_data_dir, data.test, 1000, tmp_path / "data")
    in_torch, _, _ = run_ejected(programs[0], fewer, 20)
    in_keras, _, printed = run_ejected(programs[1], fewer, 20)
    in_fmnist = fmnist_losses(spec, "torch", 20, data=data, steps_per_execution=5)
    np.testing.assert_allclose(in_keras, in_torch, rtol=5e-4)
    np.testing.assert_allclose(in_torch, in_fmnist, rtol=5e-4)
    import torch

    ejected = torch.load(programs[0].parent / "initial.pth", weights_only=True)
    shapes = sorted(tuple(v.shape) for k, v in ejected.items() if "num_batches" not in k)
    assert shapes == sorted(tuple(v.shape) for v in original.state_dict().values() if v.ndim)


def test_a_keras_sequential_becomes_a_spec():
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    spec = ModelSpec.from_keras(model, name="theirs")
    assert [layer.kind for layer in spec.layers] == [
        "Conv2D", "ReLU", "BatchNorm", "MaxPool2D", "Flatten", "Dense"
    ]  # fmt: skip
    assert spec.layers[2].momentum == pytest.approx(0.1) and spec.layers[2].eps == 1e-3
    assert spec.count_params() == model.count_params() - 16  # Keras counts moving stats


def test_unknown_layers_are_named():
    import keras
    from torch import nn

    with pytest.raises(ConfigError, match="LSTM"):
        ModelSpec.from_torch(nn.Sequential(nn.Flatten(), nn.LSTM(4, 4)))
    with pytest.raises(ConfigError, match="Conv2d"):
        ModelSpec.from_torch(nn.Sequential(nn.Conv2d(1, 4, 3, padding=2)))
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="tanh")])  # fmt: skip
    with pytest.raises(ConfigError, match="tanh"):
        ModelSpec.from_keras(model)
