"""Architectures as data: validation, shapes, names, initialisation; optimizers and schedules."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fmnist_core import (
    BatchNorm,
    ConfigError,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ModelSpec,
    Optimizer,
    ReLU,
    Schedule,
    get_model,
)


def test_mlp_keeps_the_article_names_and_initialisation():
    spec = get_model("mlp")
    assert list(spec.shapes()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    rng = np.random.default_rng(np.random.SeedSequence([0, 0x466D6E]))  # the 0.1 initialiser
    limit = np.sqrt(6.0 / (784 + 20))
    np.testing.assert_array_equal(
        spec.init_params(0)["fc1.weight"], rng.uniform(-limit, limit, (784, 20)).astype(np.float32)
    )


def test_shapes_are_inferred_and_layers_named():
    spec = ModelSpec(
        "s",
        [
            Conv2D(8, 5, stride=2, padding="same"),
            BatchNorm(),
            ReLU(),
            MaxPool2D(2),
            Conv2D(4, 3, padding="valid"),
            GlobalAvgPool(),
            Dense(10),
        ],
    )
    assert spec.output_shapes == [
        (14, 14, 8),
        (14, 14, 8),
        (14, 14, 8),
        (7, 7, 8),
        (5, 5, 4),
        (4,),
        (10,),
    ]
    assert spec.shapes()["conv1.weight"] == (5, 5, 1, 8) and spec.shapes()["conv2.weight"] == (
        3,
        3,
        8,
        4,
    )
    assert spec.shapes()["bn1.running_var"] == (8,) and "bn1.running_var" not in spec.trainable()
    assert spec.count_params() == 5 * 5 * 8 + 8 + 16 + 3 * 3 * 8 * 4 + 4 + 4 * 10 + 10
    init = spec.init_params(1)
    assert (init["bn1.weight"] == 1).all() and (init["bn1.running_mean"] == 0).all()
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    "layers, message",
    [
        ([Dense(10)], r"layer 1 \(Dense fc1\): needs a flat input"),
        (
            [Conv2D(4, 30, padding="valid"), Flatten(), Dense(10)],
            r"layer 1 \(Conv2D conv1\): kernel 30 is larger",
        ),
        ([Flatten(), Dense(20)], r"ends in shape \(20,\), not one logit per class"),
        ([Flatten(), Dense(10), Conv2D(4, 3)], r"layer 3 \(Conv2D conv1\): needs an image"),
        (
            [
                MaxPool2D(2),
                MaxPool2D(2),
                MaxPool2D(2),
                MaxPool2D(2),
                MaxPool2D(2),
                Flatten(),
                Dense(10),
            ],
            "pool 2 is larger",
        ),
        ([Dropout(1.5), Flatten(), Dense(10)], r"rate must be a number in \[0, 1\), got 1.5"),
        ([Conv2D(0, 3), Flatten(), Dense(10)], "filters must be an integer"),
        (
            [Conv2D(4, 3, padding="full"), Flatten(), Dense(10)],
            "padding must be one of same, valid, got 'full'",
        ),
        (["relu", Flatten(), Dense(10)], "layer 1 is 'relu', not a layer"),
    ],
)
def test_a_spec_that_cannot_work_is_a_config_error(layers, message):
    with pytest.raises(ConfigError, match=message):
        ModelSpec("bad", layers)


def test_bad_spec_fails_before_any_framework_import():
    code = (
        "import sys, fmnist_core as f\n"
        "try: f.Trainer(model=f.ModelSpec('x', [f.Dense(10)]))\n"
        "except f.ConfigError: pass\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )


def test_unknown_layer_type_in_a_recorded_architecture():
    with pytest.raises(ConfigError, match="unknown layer type 'Conv3D'"):
        ModelSpec.from_dict({"name": "x", "layers": [{"type": "Conv3D"}]})
    with pytest.raises(ConfigError, match="a recorded architecture must be"):
        ModelSpec.from_dict(["Dense"])
    with pytest.raises(ConfigError, match="layer 1: 'Dense' is not a layer description"):
        ModelSpec.from_dict({"name": "x", "layers": ["Dense"]})


def test_onecycle_follows_pytorch():
    rates = Schedule("onecycle").rates(0.01, np.arange(100), 10, 100)
    assert rates[0] == pytest.approx(0.01 / 25)
    assert rates.argmax() == 29 and rates[29] == pytest.approx(0.01)
    assert rates[-1] == pytest.approx(0.01 / 25 / 1e4)


def test_other_schedules():
    assert Schedule("cosine").rates(1.0, np.array([0, 50, 100]), 10, 100) == pytest.approx(
        [1.0, 0.5, 0.0]
    )
    assert Schedule("step", step_epochs=2, gamma=0.5).rates(
        1.0, np.array([0, 19, 20, 40]), 10, 100
    ) == pytest.approx([1.0, 1.0, 0.5, 0.25])
    assert (Schedule().rates(0.1, np.arange(5), 5, 5) == 0.1).all()


def test_adam_scalars_fold_in_bias_correction():
    adam = Optimizer("adam")
    scalars = adam.step_scalars(np.array([0.1, 0.1]), np.array([1, 2]))
    assert scalars[0, 0] == pytest.approx(0.1 * np.sqrt(1 - 0.999) / (1 - 0.9))
    # the first Adam step moves every weight by about lr·sign(g), as torch's does
    new, (m, v) = adam.update(np.float32(1.0), np.float32(3.0), [0.0, 0.0], scalars[0], np.sqrt)
    assert new == pytest.approx(0.9, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"kind": "adam", "momentum": 0.9}, "momentum/nesterov are SGD options"),
        ({"kind": "sgd", "nesterov": True}, "nesterov=True needs momentum"),
        ({"kind": "sgd", "weight_decay": -1}, "weight_decay must be a number"),
    ],
)
def test_bad_optimizer(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Optimizer(**kwargs)


def test_trainer_takes_the_recipe_unless_overridden(fake_backend):
    from fmnist_core import Trainer

    cnn = Trainer(backend=fake_backend, model="cnn")
    assert (cnn.batch_size, cnn.optimizer.kind, cnn.schedule.kind) == (128, "adam", "onecycle")
    mine = Trainer(backend=fake_backend, model="cnn", batch_size=32, optimizer="sgd")
    assert (mine.batch_size, mine.optimizer.kind, mine.epochs) == (32, "sgd", cnn.epochs)
    with pytest.raises(ConfigError, match="unknown schedule 'linear'"):
        Trainer(backend=fake_backend, schedule="linear")


def test_engines_read_declared_capabilities_not_type_names():
    from fmnist_core import Conv2D, Dense, Flatten, GlobalAvgPool, ModelSpec, ReLU, get_model

    assert get_model("mlp").is_two_layer_perceptron()
    assert not get_model("cnn").is_two_layer_perceptron()
    assert get_model("cnn").has_capability("convolution")
    assert not get_model("mlp").has_capability("convolution")
    spec = ModelSpec("c", [Conv2D(4, 3), ReLU(), GlobalAvgPool(), Dense(10)])
    assert spec.has_capability("convolution") and spec.has_capability("affine")
    three = ModelSpec("three", [Flatten(), Dense(8), ReLU(), Dense(8), ReLU(), Dense(10)])
    assert not three.is_two_layer_perceptron()  # the shape, not the presence of the types
