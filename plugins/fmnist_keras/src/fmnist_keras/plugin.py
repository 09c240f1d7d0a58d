"""Registers the ``keras`` backend, its lowering table and the ``.keras`` / ``.weights.h5``
formats (no Keras import here)."""

from __future__ import annotations

import importlib.util
import os

from fmnist_core import (
    Backend,
    BackendError,
    Ejections,
    EngineConfig,
    Lowerings,
    Option,
    WeightFormat,
    hookimpl,
    load_on_call,
)


def not_data_parallel_on(keras_backend: str) -> BackendError:
    """The refusal of workers for Keras on torch or JAX."""
    return BackendError(
        f"Keras on {keras_backend!r} does not train data-parallel in fmnist "
        "(only its TensorFlow backend, through MultiWorkerMirroredStrategy)",
        fix="use keras_backend='tensorflow', or --backend torch for torchrun",
    )


def _keras_backend(options: dict) -> str:
    """The Keras backend these options run on (``keras_backend``, else ``$KERAS_BACKEND``)."""
    return options.get("keras_backend") or os.environ.get("KERAS_BACKEND") or "tensorflow"


def _tensorflow_only(options: dict) -> str | None:
    wanted = _keras_backend(options)
    return (
        None
        if wanted == "tensorflow"
        else f"it applies to Keras' TensorFlow backend, and Keras runs on {wanted!r}"
    )


class KerasBackend(Backend):
    name = "keras"
    description = "Keras 3 (keras_backend='tensorflow' by default, 'torch', or 'jax')"
    priority = 10
    requires = ("keras",)
    options = (
        Option(
            "keras_backend",
            str,
            None,
            "Keras' own backend, read once per process (default $KERAS_BACKEND, else tensorflow)",
            choices=("tensorflow", "torch", "jax"),
        ),
        Option(
            "jit_compile",
            bool,
            None,
            "XLA-compile each block of steps (TensorFlow backend; default on, off "
            "for models with Conv2D)",
            does_nothing=_tensorflow_only,
        ),
        Option(
            "threads",
            int,
            None,
            "TensorFlow's intra-op threads (TensorFlow backend; default as fmnist-tf's)",
            does_nothing=_tensorflow_only,
        ),
    )
    # data-parallel on Keras' TensorFlow backend, through fmnist-tf's workers (imported when used:
    # Keras on torch or JAX needs no TensorFlow)
    trains_data_parallel = True
    precisions = ("float32", "bfloat16")  # Keras' mixed_bfloat16 policy

    def bfloat16_pays(self, options):
        # measured on a Xeon with AMX (fast, an epoch): TensorFlow 7.5 -> 6.0 s, torch 11.9 ->
        # 10.7 s, JAX 19.4 -> 22.4 s (slower: auto keeps float32 there)
        return _keras_backend(options) != "jax"

    def launch_workers(self, argv: list[str], workers: int) -> int:
        wanted = _keras_backend({})
        if wanted != "tensorflow":
            raise not_data_parallel_on(wanted)
        if importlib.util.find_spec("fmnist_tf") is None:
            raise BackendError(
                "Keras trains data-parallel through fmnist-tf's workers, which are not installed",
                fix="pip install 'fmnist-keras[tensorflow]'",
            )
        from fmnist_tf.workers import launch_tensorflow_workers

        return launch_tensorflow_workers(argv, workers)

    def worker_rank(self) -> tuple[int, int]:
        if importlib.util.find_spec("fmnist_tf") is None:
            return super().worker_rank()
        from fmnist_tf.workers import worker_rank

        return worker_rank()

    def create_engine(self, config: EngineConfig):
        from .engine import create_engine

        return create_engine(config)


KERAS = WeightFormat(
    name="keras",
    description="Keras 3 .keras archive (loaded with safe_mode=True)",
    suffixes=(".keras",),
    read=load_on_call("fmnist_keras.formats", "read_keras"),
    write=load_on_call("fmnist_keras.formats", "write_keras"),
    plugin="fmnist_keras",
)
WEIGHTS_H5 = WeightFormat(
    name="weights.h5",
    description="Keras .weights.h5 of the model's functional build",
    suffixes=(".weights.h5",),
    read=load_on_call("fmnist_keras.formats", "read_weights_h5"),
    write=load_on_call("fmnist_keras.formats", "write_weights_h5"),
    plugin="fmnist_keras",
)


@hookimpl
def fmnist_backends():
    return [KerasBackend()]


@hookimpl
def fmnist_lowerings():
    return [Lowerings("keras", "fmnist_keras.lowering")]


@hookimpl
def fmnist_ejections():
    return [Ejections("keras", "fmnist_keras.ejection")]


@hookimpl
def fmnist_weight_formats():
    return [KERAS, WEIGHTS_H5]
