"""The Keras engine: the article's Sequential model, SGD and SparseCategoricalCrossentropy.

Keras reads its backend once, at import: ``import_keras`` sets ``KERAS_BACKEND`` before the
first import and refuses a different one afterwards. Training runs a whole block of steps per
call: inside one ``tf.function`` on the TensorFlow backend, in a loop without host syncs on torch.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from fmnist_core import BackendError, Engine, EngineConfig, StepResult
from fmnist_core.iteration import pad_block

SUPPORTED = ("tensorflow", "torch")


def import_keras(wanted: str | None = None):
    """Import Keras on backend ``wanted`` (default ``$KERAS_BACKEND`` or tensorflow)."""
    wanted = wanted or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if wanted not in SUPPORTED:
        raise BackendError(f"keras_backend={wanted!r} is not supported by fmnist-keras",
                           fix=f"use one of {', '.join(SUPPORTED)}")
    if "keras" in sys.modules:
        import keras

        current = keras.backend.backend()
        if current != wanted:
            raise BackendError(
                f"Keras was already imported with the {current!r} backend in this process, "
                f"keras_backend={wanted!r} asked for (Keras reads its backend once, at import)",
                fix=f"start a new process, or set KERAS_BACKEND={wanted} before anything imports keras")
        return keras
    os.environ["KERAS_BACKEND"] = wanted
    if wanted == "tensorflow":
        from fmnist_core.compat import import_tensorflow

        import_tensorflow()
    import keras

    return keras


def build_model():
    """The article's model on Keras 3: Flatten, Dense(20, relu), Dense(10)."""
    import keras

    return keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(20, activation="relu"),
        keras.layers.Dense(10),
    ], name="fmnist_mlp")


def weight_list(params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Neutral params in Keras' order (Dense kernels are (in, out) in both)."""
    return [params["fc1.weight"], params["fc1.bias"], params["fc2.weight"], params["fc2.bias"]]


def neutral(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    names = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    return {n: np.array(w, dtype=np.float32) for n, w in zip(names, weights, strict=True)}


class KerasEngine(Engine):
    def __init__(self, config: EngineConfig, keras):
        self.keras = keras
        self.keras_backend = keras.backend.backend()
        if config.initial_params is None:
            keras.utils.set_random_seed(config.seed)
        self.model = build_model()
        if config.initial_params is not None:
            self.model.set_weights(weight_list(config.initial_params))
        self.optimizer = keras.optimizers.SGD(learning_rate=config.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.device = f"keras/{self.keras_backend}"

    def get_params(self):
        return neutral(self.model.get_weights())

    def set_params(self, params):
        self.model.set_weights(weight_list(params))

    def logits(self, images):
        flat = np.asarray(images, np.uint8)
        out = [self._predict(flat[start : start + 8192]) for start in range(0, len(flat), 8192)]
        return np.concatenate(out).astype(np.float32, copy=False)


class KerasTFEngine(KerasEngine):
    def __init__(self, config, keras):
        from fmnist_core.compat import import_tensorflow, set_tensorflow_threads

        tf = import_tensorflow()
        # before the model is built: TF takes a thread count only before its runtime starts
        set_tensorflow_threads(config.options.get("threads", None if tf.config.list_physical_devices("GPU") else 1))
        super().__init__(config, keras)
        self.tf = tf
        self._largest_block = [0, 0]
        jit = bool(config.options.get("jit_compile", True))
        self._train = tf.function(self._train_block, jit_compile=jit, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        self._forward = tf.function(lambda x: self.model(tf.cast(x, tf.float32) / 255.0, training=False),
                                    input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8)])

    def attach(self, images, labels):
        tf = self.tf
        self.images = tf.constant(np.asarray(images, np.uint8))
        self.labels = tf.constant(np.asarray(labels, np.int32))

    def _train_block(self, batches, steps, valid, images, labels):
        tf = self.tf
        variables = self.model.trainable_variables
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
                logits = self.model(x, training=True)
                # Keras' loss averages over the padded batch: weights × its size make it the
                # mean over the real samples
                loss = self.loss_fn(y, logits, sample_weight=weights * tf.cast(tf.shape(batches)[1], tf.float32))
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y) & mask, tf.int32))
            losses = tf.tensor_scatter_nd_update(losses, [[step]], [loss])
            correct = tf.tensor_scatter_nd_update(correct, [[step]], [hits])
            step += 1
        return losses, correct

    def train_steps(self, batches):
        padded, steps, valid = pad_block(batches, self._largest_block)
        tf = self.tf
        losses, correct = self._train(tf.constant(padded, tf.int32), tf.constant(steps), tf.constant(valid), self.images, self.labels)
        return StepResult(losses.numpy()[:steps], correct.numpy()[:steps])

    def _predict(self, images):
        return self._forward(self.tf.constant(images)).numpy()


class KerasTorchEngine(KerasEngine):
    def __init__(self, config, keras):
        super().__init__(config, keras)
        import torch

        self.torch = torch
        self.torch_device = keras.src.backend.torch.core.get_device()

    def attach(self, images, labels):
        torch = self.torch
        self.images = torch.from_numpy(np.array(images, np.uint8)).to(self.torch_device)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64)).to(self.torch_device)

    def train_steps(self, batches):
        # Calling the Keras model costs ~2 ms per step on the torch backend (layer dispatch), so
        # the step runs the same Dense math on the model's own torch tensors, with autograd and
        # plain SGD: measured 6.5 s/epoch through model() + optimizer.apply, far less this way.
        torch = self.torch
        functional = torch.nn.functional
        index = torch.from_numpy(np.ascontiguousarray(batches, np.int64)).to(self.torch_device)
        losses = torch.empty(len(index), device=self.torch_device)
        correct = torch.empty(len(index), dtype=torch.int64, device=self.torch_device)
        tensors = [v.value for v in self.model.trainable_variables]
        kernel1, bias1, kernel2, bias2 = tensors
        lr = float(self.optimizer.learning_rate)
        for step in range(len(index)):
            rows = index[step]
            x = self.images.index_select(0, rows).to(torch.float32).div_(255.0).flatten(1)
            y = self.labels.index_select(0, rows)
            logits = torch.addmm(bias2, torch.addmm(bias1, x, kernel1).relu(), kernel2)
            loss = functional.cross_entropy(logits, y)
            grads = torch.autograd.grad(loss, tensors)
            with torch.no_grad():
                for tensor, grad in zip(tensors, grads, strict=True):
                    tensor.sub_(grad, alpha=lr)
            losses[step] = loss.detach()
            correct[step] = (logits.detach().argmax(dim=1) == y).sum()
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    def _predict(self, images):
        torch = self.torch
        with torch.no_grad():
            x = torch.from_numpy(np.array(images, np.uint8)).to(self.torch_device).to(torch.float32).div_(255.0)
            return self.model(x, training=False).cpu().numpy()


def create_engine(config: EngineConfig) -> KerasEngine:
    keras = import_keras(config.options.get("keras_backend"))
    if keras.backend.backend() == "tensorflow":
        return KerasTFEngine(config, keras)
    return KerasTorchEngine(config, keras)
