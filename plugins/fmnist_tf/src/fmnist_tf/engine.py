"""The TensorFlow engine: any ``ModelSpec`` as TF ops on explicit variables in a ``tf.Module``.

The article keeps raw ``tf.Variable``s on a ``tf.keras.Model``; Keras 3 no longer tracks those,
so they live in a ``tf.Module`` here and this backend does not depend on Keras. A whole block of
steps runs inside one ``tf.function`` (``fmnist_core.compat.tensorflow_train_block``, XLA-compiled
for models without convolutions) over the uint8 training set kept as a tensor on the device.
"""

from __future__ import annotations

import numpy as np

from fmnist_core import BackendError, Engine, EngineConfig, ModelSpec
from fmnist_core.compat import (
    import_tensorflow,
    set_tensorflow_threads,
    tensorflow_jit,
    tensorflow_strategy,
    tensorflow_train_block,
    tensorflow_train_steps,
)
from fmnist_core.models import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ReLU,
)

tf = import_tensorflow()

#: the article's variable names for the MLP (its checkpoints and SavedModel hold these)
ARTICLE_NAMES = {"w1": "fc1.weight", "b1": "fc1.bias", "w2": "fc2.weight", "b2": "fc2.bias"}


def variable_key(name: str) -> str:
    """A checkpoint-safe key for a neutral name (``conv1.weight`` → ``conv1__weight``)."""
    return name.replace(".", "__")


class SpecModule(tf.Module):
    """The layers of a ``ModelSpec`` as TF ops on variables named after the neutral names."""

    def __init__(self, spec: ModelSpec, params: dict[str, np.ndarray], seed: int = 0, synchronized: bool = False):
        super().__init__(name="fmnist_model")
        self.synchronized = synchronized
        self.spec = spec
        self.params = {variable_key(p.name): tf.Variable(params[p.name], name=variable_key(p.name),
                                                         trainable=p.trainable) for p in spec.params}
        self.seed = seed
        self.dropout_draws = tf.Variable(0, dtype=tf.int64, trainable=False, name="dropout_draws")

    def variable(self, name: str) -> tf.Variable:
        return self.params[variable_key(name)]

    @property
    def trainable_in_order(self) -> list[tf.Variable]:
        return [self.variable(name) for name in self.spec.trainable()]

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        for index, layer in enumerate(self.spec.layers):
            x = self._layer(index, layer, x, training)
        return x

    def _layer(self, index, layer, x, training):
        if isinstance(layer, Flatten):
            return tf.reshape(x, [-1, int(np.prod(self.spec.output_shapes[index]))])
        if isinstance(layer, Dense):
            return tf.matmul(x, self.variable(f"{layer.name}.weight")) + self.variable(f"{layer.name}.bias")
        if isinstance(layer, ReLU):
            return tf.nn.relu(x)
        if len(x.shape) == 3:
            x = x[..., None]  # (N, H, W) images have one channel
        if isinstance(layer, Conv2D):
            x = tf.nn.conv2d(x, self.variable(f"{layer.name}.weight"), layer.stride, layer.padding.upper())
            return x + self.variable(f"{layer.name}.bias")
        if isinstance(layer, MaxPool2D):
            return tf.nn.max_pool2d(x, layer.pool, layer.step, "VALID")
        if isinstance(layer, GlobalAvgPool):
            return tf.reduce_mean(x, axis=[1, 2])
        if isinstance(layer, BatchNorm):
            return self._batch_norm(layer, x, training)
        if isinstance(layer, Dropout):
            if not training or layer.rate == 0:
                return x
            self.dropout_draws.assign_add(1)
            seed = tf.stack([tf.constant(self.seed * 1000 + index, tf.int64), self.dropout_draws])
            keep = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed) >= layer.rate, x.dtype)
            return x * keep / (1 - layer.rate)
        raise BackendError(f"the tf backend cannot build layer {layer!r}")

    def _batch_norm(self, layer, x, training):
        gamma, beta = self.variable(f"{layer.name}.weight"), self.variable(f"{layer.name}.bias")
        mean_var, var_var = self.variable(f"{layer.name}.running_mean"), self.variable(f"{layer.name}.running_var")
        if not training:
            return tf.nn.batch_normalization(x, mean_var, var_var, beta, gamma, layer.eps)
        # the statistics accumulate in float64: a float32 sum over N·H·W values drifts by ~1e-5
        wide = tf.cast(x, tf.float64)
        axes = list(range(len(x.shape) - 1))
        if self.synchronized:  # data-parallel: the statistics of the global batch, every worker's shard
            mean64, var64 = synchronized_moments(wide, axes)
        else:
            mean64 = tf.reduce_mean(wide, axis=axes)
            var64 = tf.reduce_mean(tf.square(wide - mean64), axis=axes)
        mean, var = tf.cast(mean64, x.dtype), tf.cast(var64, x.dtype)
        m = layer.momentum
        mean_var.assign((1 - m) * mean_var + m * tf.stop_gradient(mean))
        var_var.assign((1 - m) * var_var + m * tf.stop_gradient(var))
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, layer.eps)


def synchronized_moments(x, axes):
    """Mean and biased variance over ``axes`` of every worker's ``x`` (float64): the sums, squares
    and counts in one cross-replica all-reduce, whose gradient is again an all-reduce."""
    local = tf.concat([tf.reduce_sum(x, axis=axes), tf.reduce_sum(tf.square(x), axis=axes),
                       tf.reshape(tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype), [1])], axis=0)
    sums = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
    channels = tf.shape(x)[-1]
    mean = sums[:channels] / sums[-1]
    return mean, tf.maximum(sums[channels : 2 * channels] / sums[-1] - tf.square(mean), 0.0)


def framework_params(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """TensorFlow's own initialisation (Glorot-uniform, zeros, ones) from ``seed``."""
    params = {}
    for salt, p in enumerate(spec.params, start=1):
        if p.init == "glorot_uniform":
            fan_in, fan_out = p.fans or (p.shape[0], p.shape[-1])
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            params[p.name] = tf.random.stateless_uniform(p.shape, seed=[seed, salt], minval=-limit, maxval=limit).numpy()
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
            raise BackendError(f"device {name!r} asked for, but TensorFlow sees no GPU", fix="use device='cpu' or 'auto'")
        return "/GPU:0"
    return "/CPU:0"


class TFEngine(Engine):
    def __init__(self, config: EngineConfig):
        options = config.options
        self.spec, self.optimizer = config.model, config.optimizer
        self.device = pick_device(options.get("device"))
        conv = self.spec.has("Conv2D")
        set_tensorflow_threads(options.get("threads"), conv, self.device != "/CPU:0")
        self.rank, self.world_size = config.rank, config.world_size
        self.strategy = tensorflow_strategy(self.rank, self.world_size)  # before any TF op runs
        params = config.initial_params if config.initial_params is not None else framework_params(self.spec, config.seed)
        # XLA compiles the whole block of steps into one program: 0.11 s/epoch here against 0.25 s
        # without for the MLP, but XLA's CPU convolutions are slow (cnn: 144 s/epoch against 21)
        self.jit_compile = tensorflow_jit(options.get("jit_compile"), conv, self.strategy)
        with tf.device(self.device):
            self.module = SpecModule(self.spec, params, config.seed, synchronized=self.strategy is not None)
            self.slots = {(slot, name): tf.Variable(tf.zeros_like(params[name]), trainable=False)
                          for slot in self.optimizer.slots for name in self.spec.trainable()}
        self.images = None
        self.labels = None
        self._largest_block = [0, 0]
        block = tensorflow_train_block(lambda x: self.module(x, training=True), self.module.trainable_in_order,
                                       self.spec.trainable(), self.slots, self.optimizer, self.strategy)
        self._train = tf.function(block, jit_compile=self.jit_compile, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        shape = [None, *self.spec.input_shape]
        self._forward = tf.function(self._logits_block, input_signature=[tf.TensorSpec(shape, tf.uint8)])

    def attach(self, images, labels):
        with tf.device(self.device):
            self.images = tf.constant(np.asarray(images, np.uint8))
            self.labels = tf.constant(np.asarray(labels, np.int32))

    def _logits_block(self, images):
        return self.module(tf.cast(images, tf.float32) / 255.0, training=False)

    def train_steps(self, batches, scalars):
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        with tf.device(self.device):
            return tensorflow_train_steps(self._train, batches, scalars, self._largest_block, self.rank,
                                          self.world_size, self.images, self.labels)

    def logits(self, images):
        with tf.device(self.device):
            return self._forward(tf.constant(np.asarray(images, np.uint8))).numpy().astype(np.float32, copy=False)

    def get_params(self):
        return {name: self.module.variable(name).numpy().copy() for name in self.spec.shapes()}

    def set_params(self, params):
        for name in self.spec.shapes():
            self.module.variable(name).assign(params[name])

    def optimizer_state(self):
        return {f"{slot}.{name}": value.numpy().copy() for (slot, name), value in self.slots.items()}

    def set_optimizer_state(self, state):
        for (slot, name), value in self.slots.items():
            value.assign(state[f"{slot}.{name}"])
