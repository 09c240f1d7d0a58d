"""Runs once per Keras backend: the nox sessions set KERAS_BACKEND (tensorflow, torch or jax)."""

import os

import numpy as np
import pytest

from fmnist_core import BackendError, Trainer, WeightsError, read_weights
from fmnist_core.testing import BackendConformance, RealDataAcceptance, synthetic_dataset

KERAS_BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
OTHER = "torch" if KERAS_BACKEND == "tensorflow" else "tensorflow"


class TestKerasConformance(BackendConformance):
    backend = "keras"
    options = {"keras_backend": KERAS_BACKEND}


class TestKerasOnRealData(RealDataAcceptance):
    backend = "keras"
    options = {"keras_backend": KERAS_BACKEND}

    def test_keras_file_loads_in_plain_keras(self, trained, real, tmp_path):
        import keras

        path = trained.save(tmp_path / "model.keras")
        model = keras.saving.load_model(path)
        x = real.test.images[:1000].astype(np.float32) / np.float32(255)
        predicted = np.argmax(model.predict(x, verbose=0), axis=1)
        np.testing.assert_array_equal(predicted, trained.logits(real.test.images[:1000]).argmax(1))

    def test_to_keras_model(self, trained, real):
        import keras
        from fmnist_keras import to_keras_model

        model = to_keras_model(trained)
        x = real.test.images[:200].astype(np.float32) / np.float32(255)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model.predict(x, verbose=0)),
            trained.logits(real.test.images[:200]),
            rtol=1e-5,
            atol=1e-5,
        )

    @pytest.mark.skipif(
        KERAS_BACKEND != "tensorflow", reason="model.export needs the TensorFlow Keras backend"
    )
    def test_export_savedmodel(self, trained, real, tmp_path):
        import tensorflow as tf
        from fmnist_keras import export

        export(trained, tmp_path / "served")
        served = tf.saved_model.load(str(tmp_path / "served"))
        x = real.test.images[:100].astype(np.float32) / np.float32(255)
        np.testing.assert_allclose(
            served.serve(x).numpy(), trained.logits(real.test.images[:100]), rtol=1e-5, atol=1e-5
        )


def test_unsafe_keras_file_refused(tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Flatten(),
            keras.layers.Dense(20),
            keras.layers.Dense(10),
        ]
    )
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(WeightsError, match="not a loadable .keras model"):
        read_weights(tmp_path / "lambda.keras")


def test_keras_of_another_shape(tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(32),
            keras.layers.Dense(10),
        ]
    )
    model.save(tmp_path / "wide.keras")
    with pytest.raises(WeightsError, match="which fit no known model"):
        read_weights(tmp_path / "wide.keras")


def test_other_keras_backend_in_same_process_is_a_clear_error():
    with pytest.raises(BackendError, match=f"already imported with the '{KERAS_BACKEND}' backend"):
        _ = Trainer(
            backend="keras", keras_backend=OTHER, data=synthetic_dataset(), verbose=0
        ).engine


def test_precision_auto_takes_bfloat16_only_where_it_was_measured_to_pay(monkeypatch):
    """Keras' mixed_bfloat16 was faster on TensorFlow and torch, slower on JAX (BENCHMARKS.md,
    "Speedrun III"): auto keeps float32 on JAX even on a CPU with AMX."""
    from fmnist_core import get_backend

    keras = get_backend("keras")
    assert "bfloat16" in keras.precisions
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert keras.bfloat16_pays({}) and keras.bfloat16_pays({"keras_backend": "torch"})
    assert not keras.bfloat16_pays({"keras_backend": "jax"})
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert not keras.bfloat16_pays({})
