"""Registers the ``keras`` backend and the ``.keras`` / ``.weights.h5`` formats (no Keras import here)."""

from __future__ import annotations

from fmnist_core import Backend, EngineConfig, Option, WeightFormat, hookimpl
from fmnist_core.weights import lazy
from fmnist_core.workers import TensorFlowWorkers


class KerasBackend(TensorFlowWorkers, Backend):
    name = "keras"
    description = "Keras 3 (keras_backend='tensorflow' by default, 'torch', or 'jax')"
    priority = 10
    requires = ("keras",)
    options = (
        Option("keras_backend", str, None, "Keras' own backend, read once per process (default $KERAS_BACKEND, "
               "else tensorflow)", choices=("tensorflow", "torch", "jax")),
        Option("jit_compile", bool, None, "XLA-compile each block of steps (TensorFlow backend; default on, off "
               "for models with Conv2D)",
               applies=lambda o: _tensorflow_only(o)),
        Option("threads", int, None, "TensorFlow's intra-op threads (TensorFlow backend; default as fmnist-tf's)",
               applies=lambda o: _tensorflow_only(o)),
    )

    def create_engine(self, config: EngineConfig):
        from .engine import create_engine

        return create_engine(config)


def _tensorflow_only(options: dict) -> str | None:
    import os

    wanted = options.get("keras_backend") or os.environ.get("KERAS_BACKEND") or "tensorflow"
    return None if wanted == "tensorflow" else f"it applies to Keras' TensorFlow backend, and Keras runs on {wanted!r}"


KERAS = WeightFormat(
    name="keras",
    description="Keras 3 .keras archive (loaded with safe_mode=True)",
    suffixes=(".keras",),
    read=lazy("fmnist_keras.formats", "read_keras"),
    write=lazy("fmnist_keras.formats", "write_keras"),
    plugin="fmnist_keras",
)
WEIGHTS_H5 = WeightFormat(
    name="weights.h5",
    description="Keras .weights.h5 of the model's Sequential",
    suffixes=(".weights.h5",),
    read=lazy("fmnist_keras.formats", "read_weights_h5"),
    write=lazy("fmnist_keras.formats", "write_weights_h5"),
    plugin="fmnist_keras",
)


@hookimpl
def fmnist_backends():
    return [KerasBackend()]


@hookimpl
def fmnist_weight_formats():
    return [KERAS, WEIGHTS_H5]
