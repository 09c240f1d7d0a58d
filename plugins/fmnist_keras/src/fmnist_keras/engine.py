"""The Keras engine: the article's Sequential model, SGD and SparseCategoricalCrossentropy.

Keras reads its backend once, at import: ``import_keras`` sets ``KERAS_BACKEND`` before the
first import and refuses a different one afterwards. Training runs a whole block of steps per
call: inside one ``tf.function`` on the TensorFlow backend, in a loop without host syncs on torch.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np

from fmnist_core import BackendError, Engine, EngineConfig, ModelSpec, StepResult
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

SUPPORTED = ("tensorflow", "torch", "jax")


def import_keras(wanted: str | None = None):
    """Import Keras on backend ``wanted`` (default ``$KERAS_BACKEND`` or tensorflow)."""
    wanted = wanted or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if wanted not in SUPPORTED:
        raise BackendError(f"keras_backend={wanted!r} is not supported by fmnist-keras",
                           fix=f"use one of {', '.join(SUPPORTED)}")
    if wanted == "jax" and importlib.util.find_spec("jax") is None:
        raise BackendError("keras_backend='jax' asked for, but JAX is not installed",
                           fix="pip install 'fmnist-keras[jax]' (or fmnist-core[keras-jax])")
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


def _precise_batch_norm(keras):
    """Keras' BatchNormalization with its batch statistics accumulated in float64 (a float32 sum
    over N·H·W values drifts by ~1e-5, enough to leave the NumPy reference after 20 steps)."""

    class PreciseBatchNormalization(keras.layers.BatchNormalization):
        def _moments(self, inputs, mask):
            if mask is not None:
                return super()._moments(inputs, mask)
            mean, variance = keras.ops.moments(keras.ops.cast(inputs, "float64"), axes=self._reduction_axes,
                                               synchronized=self.synchronized)
            return keras.ops.cast(mean, inputs.dtype), keras.ops.cast(variance, inputs.dtype)

    return PreciseBatchNormalization


def build_model(spec: ModelSpec, seed: int = 0, training: bool = False, synchronized: bool = False):
    """A ``keras.Sequential`` of ``spec``: Keras' own layers, named after the neutral names.

    ``training=True`` (the engine's model) swaps in a BatchNormalization with float64 batch
    statistics, ``synchronized`` across data-parallel workers; files are written from Keras' own
    layers, so plain Keras loads them.
    """
    import keras

    batch_norm = (_precise_batch_norm(keras) if training and keras.backend.backend() != "jax"
                  else keras.layers.BatchNormalization)

    layers = [keras.Input(shape=spec.input_shape)]
    if not isinstance(spec.layers[0], Flatten):  # images get their channel axis
        layers.append(keras.layers.Reshape((*spec.input_shape, 1)))
    for index, layer in enumerate(spec.layers):
        if isinstance(layer, Flatten):
            layers.append(keras.layers.Flatten())
        elif isinstance(layer, Dense):
            layers.append(keras.layers.Dense(layer.units, name=layer.name))
        elif isinstance(layer, Conv2D):
            layers.append(keras.layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride,
                                              padding=layer.padding, name=layer.name))
        elif isinstance(layer, MaxPool2D):
            layers.append(keras.layers.MaxPooling2D(layer.pool, strides=layer.step))
        elif isinstance(layer, ReLU):
            layers.append(keras.layers.ReLU())
        elif isinstance(layer, BatchNorm):  # Keras' momentum is the share of the old statistics
            layers.append(batch_norm(momentum=1 - layer.momentum, epsilon=layer.eps, name=layer.name,
                                     **({"synchronized": True} if synchronized else {})))
        elif isinstance(layer, Dropout):
            layers.append(keras.layers.Dropout(layer.rate, seed=seed * 1000 + index))
        elif isinstance(layer, GlobalAvgPool):
            layers.append(keras.layers.GlobalAveragePooling2D())
        else:
            raise BackendError(f"the keras backend cannot build layer {layer!r}")
    return keras.Sequential(layers, name=f"fmnist_{spec.name}")


def weight_list(spec: ModelSpec, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Neutral params in Keras' order (Keras keeps kernels (in, out) and (kh, kw, in, out) too)."""
    return [params[p.name] for p in spec.params]


def neutral(spec: ModelSpec, weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {p.name: np.array(w, dtype=np.float32) for p, w in zip(spec.params, weights, strict=True)}


class KerasEngine(Engine):
    def __init__(self, config: EngineConfig, keras):
        self.keras = keras
        self.keras_backend = keras.backend.backend()
        self.spec, self.optimizer = config.model, config.optimizer
        if config.initial_params is None:  # the framework's initialiser draws from the global seed;
            keras.utils.set_random_seed(config.seed)  # Dropout layers get their own seeds
        self.model = build_model(self.spec, config.seed, training=True, synchronized=config.world_size > 1)
        if config.initial_params is not None:
            self.model.set_weights(weight_list(self.spec, config.initial_params))
        self.variables = self.model.trainable_variables
        self.device = f"keras/{self.keras_backend}"

    def get_params(self):
        return neutral(self.spec, self.model.get_weights())

    def set_params(self, params):
        self.model.set_weights(weight_list(self.spec, params))

    def optimizer_state(self):
        return {f"{slot}.{name}": np.array(self._to_numpy(value), np.float32) for (slot, name), value in self.slots.items()}


class KerasTFEngine(KerasEngine):
    def __init__(self, config, keras):
        from fmnist_core.compat import (
            import_tensorflow,
            set_tensorflow_threads,
            tensorflow_jit,
            tensorflow_strategy,
            tensorflow_train_block,
        )

        tf = import_tensorflow()
        # before the model is built: TF takes a thread count only before its runtime starts
        conv = config.model.has("Conv2D")
        set_tensorflow_threads(config.options.get("threads"), conv, bool(tf.config.list_physical_devices("GPU")))
        self.rank, self.world_size = config.rank, config.world_size
        self.strategy = tensorflow_strategy(self.rank, self.world_size)  # before any TF op runs
        super().__init__(config, keras)
        self.tf = tf
        self.slots = {(slot, name): tf.Variable(tf.zeros(shape), trainable=False)
                      for slot in self.optimizer.slots for name, shape in
                      ((n, self.spec.shapes()[n]) for n in self.spec.trainable())}
        self._largest_block = [0, 0]
        jit = tensorflow_jit(config.options.get("jit_compile"), conv, self.strategy)
        # the Keras variables' own tf.Variables: the same update as fmnist-tf's, on Keras' model
        block = tensorflow_train_block(lambda x: self.model(x, training=True), [v.value for v in self.variables],
                                       self.spec.trainable(), self.slots, self.optimizer, self.strategy)
        self._train = tf.function(block, jit_compile=jit, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        self._forward = tf.function(lambda x: self.model(tf.cast(x, tf.float32) / 255.0, training=False),
                                    input_signature=[tf.TensorSpec([None, *self.spec.input_shape], tf.uint8)])

    def _to_numpy(self, value):
        return value.numpy()

    def set_optimizer_state(self, state):
        for (slot, name), value in self.slots.items():
            value.assign(state[f"{slot}.{name}"])

    def attach(self, images, labels):
        tf = self.tf
        self.images = tf.constant(np.asarray(images, np.uint8))
        self.labels = tf.constant(np.asarray(labels, np.int32))

    def train_steps(self, batches, scalars):
        from fmnist_core.compat import tensorflow_train_steps

        return tensorflow_train_steps(self._train, batches, scalars, self._largest_block, self.rank, self.world_size,
                                      self.images, self.labels)

    def logits(self, images):
        return self._forward(self.tf.constant(np.asarray(images, np.uint8))).numpy().astype(np.float32, copy=False)


class KerasTorchEngine(KerasEngine):
    def __init__(self, config, keras):
        super().__init__(config, keras)
        import torch

        self.torch = torch
        self.torch_device = keras.src.backend.torch.core.get_device()
        self.tensors = [v.value for v in self.variables]
        self.slots = {(slot, name): torch.zeros_like(tensor)
                      for slot in self.optimizer.slots for name, tensor in zip(self.spec.trainable(), self.tensors, strict=True)}
        self.fused = self.spec.is_mlp() and self.optimizer.is_plain_sgd

    def _to_numpy(self, value):
        return value.detach().cpu().numpy()

    def set_optimizer_state(self, state):
        for (slot, name), value in self.slots.items():
            value.copy_(self.torch.from_numpy(np.asarray(state[f"{slot}.{name}"], np.float32)))

    def attach(self, images, labels):
        torch = self.torch
        self.images = torch.from_numpy(np.array(images, np.uint8)).to(self.torch_device)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64)).to(self.torch_device)

    def _logits(self, x):
        # Calling the Keras model costs ~2 ms per step on the torch backend (layer dispatch), so
        # the article's MLP runs the same Dense math on the model's own torch tensors: measured
        # 6.5 s/epoch through model() + optimizer.apply, about 1 s this way.
        if self.fused:
            kernel1, bias1, kernel2, bias2 = self.tensors
            return self.torch.addmm(bias2, self.torch.addmm(bias1, x.flatten(1), kernel1).relu(), kernel2)
        return self.model(x, training=True)

    def train_steps(self, batches, scalars):
        torch = self.torch
        functional = torch.nn.functional
        index = torch.from_numpy(np.ascontiguousarray(batches, np.int64)).to(self.torch_device)
        rows = np.asarray(scalars, np.float64).tolist()
        losses = torch.empty(len(index), device=self.torch_device)
        correct = torch.empty(len(index), dtype=torch.int64, device=self.torch_device)
        names, tensors, optimizer = self.spec.trainable(), self.tensors, self.optimizer
        for step in range(len(index)):
            sample = index[step]
            x = self.images.index_select(0, sample).to(torch.float32).div_(255.0)
            y = self.labels.index_select(0, sample)
            logits = self._logits(x)
            loss = functional.cross_entropy(logits, y)
            grads = torch.autograd.grad(loss, tensors)
            with torch.no_grad():
                for name, tensor, grad in zip(names, tensors, grads, strict=True):
                    slots = [self.slots[(slot, name)] for slot in optimizer.slots]
                    new, new_slots = optimizer.update(tensor, grad, slots, rows[step], torch.sqrt)
                    tensor.copy_(new)
                    for target, value in zip(slots, new_slots, strict=True):
                        target.copy_(value)
            losses[step] = loss.detach()
            correct[step] = (logits.detach().argmax(dim=1) == y).sum()
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    def logits(self, images):
        torch = self.torch
        with torch.no_grad():
            x = torch.from_numpy(np.array(images, np.uint8)).to(self.torch_device).to(torch.float32).div_(255.0)
            return self.model(x, training=False).cpu().numpy().astype(np.float32, copy=False)


class KerasJaxEngine(KerasEngine):
    """Keras on JAX: ``model.stateless_call`` inside one jitted step, the core's update on the
    returned arrays; the model's variables are written back once per block."""

    def __init__(self, config, keras):
        super().__init__(config, keras)
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        shapes = self.spec.shapes()
        self.slots = {(slot, name): jnp.zeros(shapes[name], jnp.float32)
                      for slot in self.optimizer.slots for name in self.spec.trainable()}
        self._step = jax.jit(self._step_fn)
        self._forward = jax.jit(lambda trainable, non_trainable, x: self.model.stateless_call(
            trainable, non_trainable, x.astype(jnp.float32) / 255.0, training=False)[0])

    def _to_numpy(self, value):
        return np.asarray(value)

    def set_optimizer_state(self, state):
        for key in self.slots:
            self.slots[key] = self.jnp.asarray(np.asarray(state[f"{key[0]}.{key[1]}"], np.float32))

    def attach(self, images, labels):
        self.images = self.jnp.asarray(np.asarray(images, np.uint8))
        self.labels = self.jnp.asarray(np.asarray(labels, np.int32))

    def _step_fn(self, trainable, non_trainable, slots, rows, scalars):
        jax, jnp = self.jax, self.jnp
        x = self.images[rows].astype(jnp.float32) / 255.0
        y = self.labels[rows]

        def loss_fn(values):
            logits, updated = self.model.stateless_call(values, non_trainable, x, training=True)
            picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
            return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked), (logits, updated)

        (loss, (logits, updated)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        new_values, new_slots = [], {}
        for name, value, grad in zip(self.spec.trainable(), trainable, grads, strict=True):
            state = [slots[(slot, name)] for slot in self.optimizer.slots]
            new, new_state = self.optimizer.update(value, grad, state, scalars, jnp.sqrt)
            new_values.append(new)
            new_slots.update({(slot, name): v for slot, v in zip(self.optimizer.slots, new_state, strict=True)})
        correct = jnp.sum(jnp.argmax(logits, axis=1) == y)
        return new_values, updated, new_slots, loss, correct

    def train_steps(self, batches, scalars):
        jnp = self.jnp
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        rows = jnp.asarray(np.ascontiguousarray(batches, np.int32))
        rates = jnp.asarray(np.asarray(scalars, np.float32))
        losses, correct = [], []
        for step in range(len(batches)):
            trainable, non_trainable, self.slots, loss, hits = self._step(trainable, non_trainable, self.slots,
                                                                          rows[step], rates[step])
            losses.append(loss)
            correct.append(hits)
        for variable, value in zip(self.model.trainable_variables, trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable, strict=True):
            variable.assign(value)
        return StepResult(np.asarray(jnp.stack(losses)), np.asarray(jnp.stack(correct)).astype(np.int64))

    def logits(self, images):
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        out = self._forward(trainable, non_trainable, self.jnp.asarray(np.asarray(images, np.uint8)))
        return np.asarray(out).astype(np.float32, copy=False)


def create_engine(config: EngineConfig) -> KerasEngine:
    keras = import_keras(config.options.get("keras_backend"))
    if config.world_size > 1 and keras.backend.backend() != "tensorflow":
        raise BackendError(f"Keras on {keras.backend.backend()!r} does not train data-parallel in fmnist "
                           "(only its TensorFlow backend, through MultiWorkerMirroredStrategy)",
                           fix="use keras_backend='tensorflow', or --backend torch for torchrun")
    engines = {"tensorflow": KerasTFEngine, "torch": KerasTorchEngine, "jax": KerasJaxEngine}
    return engines[keras.backend.backend()](config, keras)
