"""What the Keras engines share: a functional Keras model of Keras' own layers
(``fmnist_keras.lowering``), trained by fmnist's loop and the core's optimizer on Keras'
TensorFlow, torch or JAX backend, each backend's engine its own module (``engine_tensorflow``,
``engine_torch``, ``engine_jax``).

Keras reads its backend once, at import: ``import_keras`` sets ``KERAS_BACKEND`` before the
first import and refuses a different one afterwards. On TensorFlow a whole block of steps runs
inside one ``tf.function`` (fmnist-tf's runtime); on torch, fmnist-torch's autograd step; on JAX,
``stateless_call`` inside one jitted step.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np

from fmnist_core import BackendError, Engine, EngineConfig, ModelSpec

from .lowering import build_model, keras_name

SUPPORTED = ("tensorflow", "torch", "jax")


def import_keras(wanted: str | None = None):
    """Import Keras on backend ``wanted`` (default ``$KERAS_BACKEND`` or tensorflow)."""
    wanted = wanted or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if wanted not in SUPPORTED:
        raise BackendError(
            f"keras_backend={wanted!r} is not supported by fmnist-keras",
            fix=f"use one of {', '.join(SUPPORTED)}",
        )
    if wanted == "jax" and importlib.util.find_spec("jax") is None:
        raise BackendError(
            "keras_backend='jax' asked for, but JAX is not installed",
            fix="pip install 'fmnist-keras[jax]' (or fmnist-core[keras-jax])",
        )
    if "keras" in sys.modules:
        import keras

        current = keras.backend.backend()
        if current != wanted:
            raise BackendError(
                f"Keras was already imported with the {current!r} backend in this process, "
                f"keras_backend={wanted!r} asked for (Keras reads its backend once, at import)",
                fix=f"start a new process, or set KERAS_BACKEND={wanted} before anything imports "
                "keras",
            )
        return keras
    os.environ["KERAS_BACKEND"] = wanted
    if wanted == "tensorflow":
        tensorflow_runtime().import_tensorflow()
    import keras

    return keras


def tensorflow_runtime():
    """fmnist-tf's TensorFlow runtime (Keras on TensorFlow trains through it)."""
    try:
        from fmnist_tf import runtime
    except ImportError as exc:
        raise BackendError(
            "Keras on TensorFlow trains through fmnist-tf, which is not installed",
            fix="pip install 'fmnist-keras[tensorflow]' (or fmnist-core[keras])",
        ) from exc
    return runtime


def torch_steps():
    """fmnist-torch's autograd step (Keras on torch trains through it)."""
    try:
        from fmnist_torch.steps import TORCH_OPS, autograd_steps
    except ImportError as exc:
        raise BackendError(
            "Keras on torch trains through fmnist-torch, which is not installed",
            fix="pip install 'fmnist-keras[torch]'",
        ) from exc
    return TORCH_OPS, autograd_steps


def param_groups(spec: ModelSpec) -> dict[str, list]:
    """The spec's ``ParamSpec``s by the Keras layer that holds them, in this order (``conv1``,
    ``res1__conv1``: ``keras_name`` of the fmnist layer's name)."""
    groups: dict[str, list] = {}
    for p in spec.params:
        groups.setdefault(keras_name(p.name.rsplit(".", 1)[0]), []).append(p)
    return groups


def get_weights(model, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The neutral parameters of a Keras model built from ``spec``."""
    return {
        p.name: np.array(w, dtype=np.float32)
        for owner, specs in param_groups(spec).items()
        for p, w in zip(specs, model.get_layer(owner).get_weights(), strict=True)
    }


def set_weights(model, spec: ModelSpec, params: dict[str, np.ndarray]) -> None:
    """Put neutral ``params`` into a Keras model built from ``spec``."""
    for owner, specs in param_groups(spec).items():
        model.get_layer(owner).set_weights([params[p.name] for p in specs])


def variables(model, spec: ModelSpec) -> dict:
    """Each neutral name's Keras variable."""
    return {
        p.name: v
        for owner, specs in param_groups(spec).items()
        for p, v in zip(specs, model.get_layer(owner).weights, strict=True)
    }


class KerasEngine(Engine):
    """What the three Keras engines share: the model, its variables by neutral name, params."""

    def __init__(self, config: EngineConfig, keras):
        self.keras = keras
        self.keras_backend = keras.backend.backend()
        self.spec, self.optimizer = config.model, config.optimizer
        if config.initial_params is None:  # the framework's initialiser draws from the global seed;
            keras.utils.set_random_seed(config.seed)  # Dropout layers get their own seeds
        self.precision = config.precision
        # precision="bfloat16": Keras' mixed_bfloat16 policy for the layers built here (float32
        # variables, bfloat16 compute); the logits are cast back to float32 for the loss
        policy = keras.config.dtype_policy()
        if self.precision == "bfloat16":
            keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            self.model = build_model(
                self.spec, config.seed, training=True, synchronized=config.world_size > 1
            )
        finally:
            keras.config.set_dtype_policy(policy)
        if config.initial_params is not None:
            set_weights(self.model, self.spec, config.initial_params)
        by_name = variables(self.model, self.spec)
        self.variables = [by_name[name] for name in self.spec.trainable()]
        self.label_smoothing = config.label_smoothing
        self.device = f"keras/{self.keras_backend}"
        self.labels = None

    def get_params(self):
        return get_weights(self.model, self.spec)

    def set_params(self, params):
        set_weights(self.model, self.spec, params)


def create_engine(config: EngineConfig) -> KerasEngine:
    keras = import_keras(config.options.get("keras_backend"))
    if config.world_size > 1 and keras.backend.backend() != "tensorflow":
        from .plugin import not_data_parallel_on

        raise not_data_parallel_on(keras.backend.backend())
    backend = keras.backend.backend()
    engine: type[KerasEngine]
    if backend == "tensorflow":
        from .engine_tensorflow import KerasTFEngine as engine
    elif backend == "torch":
        from .engine_torch import KerasTorchEngine as engine
    else:
        from .engine_jax import KerasJaxEngine as engine
    return engine(config, keras)
