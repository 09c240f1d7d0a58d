"""The TensorFlow engine: explicit variables in a ``tf.Module``, ``tf.GradientTape`` and SGD.

The article keeps raw ``tf.Variable``s on a ``tf.keras.Model``; Keras 3 no longer tracks those,
so they live in a ``tf.Module`` here and this backend does not depend on Keras. A whole block of
steps runs inside one ``tf.function`` (a ``tf.range`` loop) over the uint8 training set kept as a
tensor on the device, gathering each batch by index.
"""

from __future__ import annotations

import numpy as np

from fmnist_core import BackendError, Engine, EngineConfig, StepResult
from fmnist_core.compat import import_tensorflow, set_tensorflow_threads
from fmnist_core.iteration import pad_block

tf = import_tensorflow()

NAMES = ("w1", "b1", "w2", "b2")
NEUTRAL = {"w1": "fc1.weight", "b1": "fc1.bias", "w2": "fc2.weight", "b2": "fc2.bias"}


class MLP(tf.Module):
    """``matmul + bias → relu → matmul + bias`` on explicit variables."""

    def __init__(self, params: dict[str, np.ndarray]):
        super().__init__(name="mlp")
        self.w1 = tf.Variable(params["fc1.weight"], name="w1")
        self.b1 = tf.Variable(params["fc1.bias"], name="b1")
        self.w2 = tf.Variable(params["fc2.weight"], name="w2")
        self.b2 = tf.Variable(params["fc2.bias"], name="b2")

    @property
    def variables_in_order(self) -> list[tf.Variable]:
        return [self.w1, self.b1, self.w2, self.b2]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.reshape(x, [-1, 784])
        hidden = tf.nn.relu(tf.matmul(x, self.w1) + self.b1)
        return tf.matmul(hidden, self.w2) + self.b2


def glorot_params(seed: int) -> dict[str, np.ndarray]:
    """TensorFlow's own Glorot-uniform initialisation (zeros for biases), from ``seed``."""
    def glorot(shape, salt):
        limit = np.sqrt(6.0 / sum(shape))
        return tf.random.stateless_uniform(shape, seed=[seed, salt], minval=-limit, maxval=limit).numpy()

    return {"fc1.weight": glorot((784, 20), 1), "fc1.bias": np.zeros(20, np.float32),
            "fc2.weight": glorot((20, 10), 2), "fc2.bias": np.zeros(10, np.float32)}


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


class TFMLPEngine(Engine):
    def __init__(self, config: EngineConfig):
        options = config.options
        self.device = pick_device(options.get("device"))
        set_tensorflow_threads(options.get("threads", 1 if self.device == "/CPU:0" else None))
        params = config.initial_params if config.initial_params is not None else glorot_params(config.seed)
        # XLA compiles the whole block of steps into one program: 0.11 s/epoch here against
        # 0.25 s without; a switch since the compile itself costs about half a second per run.
        self.jit_compile = bool(options.get("jit_compile", True))
        with tf.device(self.device):
            self.module = MLP(config.model.check_params(params))
        self.learning_rate = tf.constant(config.learning_rate, tf.float32)
        self.images = None
        self.labels = None
        self._largest_block = [0, 0]
        self._train = tf.function(self._train_block, jit_compile=self.jit_compile, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        self._forward = tf.function(self._logits_block, input_signature=[tf.TensorSpec([None, 784], tf.uint8)])

    def attach(self, images, labels):
        with tf.device(self.device):
            self.images = tf.constant(np.asarray(images, np.uint8).reshape(len(images), 784))
            self.labels = tf.constant(np.asarray(labels, np.int32))

    def _train_block(self, batches, steps, valid, images, labels):
        variables = self.module.variables_in_order
        losses = tf.zeros([tf.shape(batches)[0]], tf.float32)
        correct = tf.zeros([tf.shape(batches)[0]], tf.int32)
        mask = tf.range(tf.shape(batches)[1]) < valid  # padding samples of a smaller last batch
        weights = tf.cast(mask, tf.float32) / tf.cast(valid, tf.float32)
        step = tf.constant(0)
        while step < steps:  # not tf.range: XLA makes a Range's limit a compile-time constant
            rows = batches[step]
            x = tf.cast(tf.gather(images, rows), tf.float32) / 255.0
            y = tf.gather(labels, rows)
            with tf.GradientTape() as tape:
                logits = self.module(x)
                per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                loss = tf.reduce_sum(per_sample * weights)
            for variable, grad in zip(variables, tape.gradient(loss, variables), strict=True):
                variable.assign_sub(self.learning_rate * grad)
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y) & mask, tf.int32))
            losses = tf.tensor_scatter_nd_update(losses, [[step]], [loss])
            correct = tf.tensor_scatter_nd_update(correct, [[step]], [hits])
            step += 1
        return losses, correct

    def _logits_block(self, images):
        return self.module(tf.cast(images, tf.float32) / 255.0)

    def train_steps(self, batches):
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        padded, steps, valid = pad_block(batches, self._largest_block)
        with tf.device(self.device):
            losses, correct = self._train(tf.constant(padded, tf.int32), tf.constant(steps), tf.constant(valid), self.images, self.labels)
        return StepResult(losses.numpy()[:steps], correct.numpy()[:steps])

    def logits(self, images):
        flat = np.asarray(images, np.uint8).reshape(len(images), 784)
        out = []
        with tf.device(self.device):
            for start in range(0, len(flat), 8192):
                out.append(self._forward(tf.constant(flat[start : start + 8192])).numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def get_params(self):
        return {NEUTRAL[v.name.split(":")[0]]: v.numpy().copy() for v in self.module.variables_in_order}

    def set_params(self, params):
        for variable in self.module.variables_in_order:
            variable.assign(params[NEUTRAL[variable.name.split(":")[0]]])
