"""``ModelSpec.from_keras`` takes only what fmnist computes exactly (issue 42)."""

import keras
import pytest

from fmnist_core import ConfigError, ModelSpec

L = keras.layers


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(10)

    def call(self, x):
        return self.dense(x)


class Doubled(L.Dense):
    def call(self, x):
        return 2 * super().call(x)


def plain(*layers):
    return keras.Sequential([keras.Input((28, 28, 1)), *layers])


@pytest.mark.parametrize(
    "model, said",
    [
        (None, "None"),
        (Subclassed(), "got Subclassed"),
        (plain(L.Flatten(), Doubled(10)), "Doubled"),
        (plain(L.ReLU(max_value=6.0), L.Flatten(), L.Dense(10)), "max_value"),
        (plain(L.ReLU(negative_slope=0.1), L.Flatten(), L.Dense(10)), "negative_slope"),
        (
            plain(L.Dropout(0.5, noise_shape=(None, 1, 1, 1)), L.Flatten(), L.Dense(10)),
            "noise_shape",
        ),  # fmt: skip
    ],
)
def test_what_fmnist_does_not_compute_is_refused_by_name(model, said):
    with pytest.raises(ConfigError, match="from_keras") as caught:
        ModelSpec.from_keras(model)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_channels_first_layers_are_refused():
    layer = L.MaxPooling2D(2, data_format="channels_first")
    model = keras.Sequential([keras.Input((1, 28, 28)), layer, L.Flatten(), L.Dense(10)])
    with pytest.raises(ConfigError, match="channels-first"):
        ModelSpec.from_keras(model)
