"""The TensorFlow engine: any ``ModelSpec`` as TF ops (``fmnist_tf.lowering``) on explicit
variables in a ``tf.Module``.

The article keeps raw ``tf.Variable``s on a ``tf.keras.Model``; Keras 3 no longer tracks those,
so they live in a ``tf.Module`` here and this backend does not depend on Keras. A whole block of
steps runs inside one ``tf.function`` (``fmnist_tf.runtime.tensorflow_train_block``,
XLA-compiled for models without convolutions) over the uint8 training set kept as a tensor on
the device; the optimizer is the core's (``OptimizerSlots`` over ``tf.Variable``s).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmnist_core import BackendError, Engine, EngineConfig, ModelSpec
from fmnist_core.plugin_api import OptimizerSlots, lowering_table

from .runtime import (
    import_tensorflow,
    set_tensorflow_threads,
    tensorflow_jit,
    tensorflow_ops,
    tensorflow_strategy,
    tensorflow_train_block,
    tensorflow_train_steps,
)

tf: Any = import_tensorflow()

#: the article's variable names for the MLP (its checkpoints and SavedModel hold these)
ARTICLE_NAMES = {"w1": "fc1.weight", "b1": "fc1.bias", "w2": "fc2.weight", "b2": "fc2.bias"}


def variable_key(name: str) -> str:
    """A checkpoint-safe key for a neutral name (``conv1.weight`` → ``conv1__weight``)."""
    return name.replace(".", "__")


class SpecModule(tf.Module):
    """The layers of a ``ModelSpec`` as TF ops on variables named after the neutral names; the
    lowerings read what they need from it (``fmnist_tf.lowering``)."""

    def __init__(
        self,
        spec: ModelSpec,
        params: dict[str, np.ndarray],
        seed: int = 0,
        synchronized: bool = False,
    ):
        super().__init__(name="fmnist_model")
        self.table = lowering_table("tf")
        for layer in spec.walk():
            self.table.builder(layer)  # a missing lowering fails here, naming the layer type
        self.synchronized = synchronized
        self.spec = spec
        self.params = {
            variable_key(p.name): tf.Variable(
                params[p.name], name=variable_key(p.name), trainable=p.trainable
            )
            for p in spec.params
        }
        self.seed = seed
        self.dropout_draws = tf.Variable(0, dtype=tf.int64, trainable=False, name="dropout_draws")
        self.training, self.index = False, 0

    def variable(self, name: str) -> tf.Variable:
        return self.params[variable_key(name)]

    @property
    def trainable_in_order(self) -> list[tf.Variable]:
        return [self.variable(name) for name in self.spec.trainable()]

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        self.training, self.index = training, 0
        return self.run(self.spec.layers, x, self.spec.input_shape)

    def run(self, layers, x, shape):
        """The ops of a stack of layers from ``x`` of neutral ``shape``."""
        return self.table.apply(layers, x, shape, self)


def framework_params(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """TensorFlow's own initialisation (Glorot-uniform, zeros, ones) from ``seed``."""
    params = {}
    for salt, p in enumerate(spec.params, start=1):
        if p.init == "glorot_uniform":
            fan_in, fan_out = p.fans or (p.shape[0], p.shape[-1])
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            params[p.name] = tf.random.stateless_uniform(
                p.shape, seed=[seed, salt], minval=-limit, maxval=limit
            ).numpy()
        else:
            params[p.name] = np.full(p.shape, 1.0 if p.init == "ones" else 0.0, np.float32)
    return params


def pick_device(name: str | None) -> str:
    # physical devices: listing them does not start TF's runtime (the thread setting comes after)
    gpus = tf.config.list_physical_devices("GPU")
    if name in (None, "auto"):
        return "/GPU:0" if gpus else "/CPU:0"
    if name in ("gpu", "cuda") or name.startswith(("/GPU", "cuda:")):
        if not gpus:
            raise BackendError(
                f"device {name!r} asked for, but TensorFlow sees no GPU",
                fix="use device='cpu' or 'auto'",
            )
        return "/GPU:0"
    return "/CPU:0"


class TFEngine(Engine):
    def __init__(self, config: EngineConfig):
        options = config.options
        self.spec, self.optimizer = config.model, config.optimizer
        self.device = pick_device(options.get("device"))
        conv = self.spec.has_capability("convolution")
        set_tensorflow_threads(options.get("threads"), conv, self.device != "/CPU:0")
        self.rank, self.world_size = config.rank, config.world_size
        self.strategy = tensorflow_strategy(self.rank, self.world_size)  # before any TF op runs
        params = (
            config.initial_params
            if config.initial_params is not None
            else framework_params(self.spec, config.seed)
        )
        # XLA compiles the whole block of steps into one program: 0.11 s/epoch here against 0.25 s
        # without for the MLP, but XLA's CPU convolutions are slow (cnn: 144 s/epoch against 21)
        self.jit_compile = tensorflow_jit(options.get("jit_compile"), conv, self.strategy)
        with tf.device(self.device):
            self.module = SpecModule(
                self.spec, params, config.seed, synchronized=self.strategy is not None
            )
            self.slots = OptimizerSlots(
                self.optimizer,
                self.spec.trainable(),
                self.module.trainable_in_order,
                tensorflow_ops(),
            )
        self.labels = None
        self._largest_block = [0, 0]
        block = tensorflow_train_block(
            lambda x: self.module(x, training=True),
            self.module.trainable_in_order,
            self.slots,
            self.strategy,
            config.label_smoothing,
        )
        self._train = tf.function(block, jit_compile=self.jit_compile, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        shape = [None, *self.spec.input_shape]
        self._forward = tf.function(
            self._logits_block, input_signature=[tf.TensorSpec(shape, tf.uint8)]
        )

    def attach(self, images, labels):
        with tf.device(self.device):
            self.images = tf.constant(np.asarray(images, np.uint8))
            self.labels = tf.constant(np.asarray(labels, np.int32))

    def _logits_block(self, images):
        return self.module(tf.cast(images, tf.float32) / 255.0, training=False)

    def train_steps(self, batches, scalars):
        self.require_attached()
        with tf.device(self.device):
            return tensorflow_train_steps(
                self._train,
                batches,
                scalars,
                self._largest_block,
                self.rank,
                self.world_size,
                self.images,
                self.labels,
            )

    def logits(self, images):
        with tf.device(self.device):
            return (
                self._forward(tf.constant(np.asarray(images, np.uint8)))
                .numpy()
                .astype(np.float32, copy=False)
            )

    def get_params(self):
        return {name: self.module.variable(name).numpy().copy() for name in self.spec.shapes()}

    def set_params(self, params):
        for name in self.spec.shapes():
            self.module.variable(name).assign(params[name])
