"""The Keras engines: a functional Keras model of Keras' own layers (``fmnist_keras.lowering``),
trained by fmnist's loop and the core's optimizer on Keras' TensorFlow, torch or JAX backend.

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

from fmnist_core import BackendError, Engine, EngineConfig, ModelSpec, StepResult
from fmnist_core.plugin_api import ArrayOps, LossOps, OptimizerSlots, per_sample_loss, updated

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


class KerasTFEngine(KerasEngine):
    def __init__(self, config, keras):
        runtime = tensorflow_runtime()
        tf = runtime.import_tensorflow()
        # before the model is built: TF takes a thread count only before its runtime starts
        conv = config.model.has_capability("convolution")
        runtime.set_tensorflow_threads(
            config.options.get("threads"), conv, bool(tf.config.list_physical_devices("GPU"))
        )
        self.rank, self.world_size = config.rank, config.world_size
        self.strategy = runtime.tensorflow_strategy(
            self.rank, self.world_size
        )  # before any TF op runs
        super().__init__(config, keras)
        self.tf, self.runtime = tf, runtime
        tensors = [v.value for v in self.variables]  # the Keras variables' own tf.Variables
        self.slots = OptimizerSlots(
            self.optimizer, self.spec.trainable(), tensors, runtime.tensorflow_ops()
        )
        self._largest_block = [0, 0]
        jit = runtime.tensorflow_jit(config.options.get("jit_compile"), conv, self.strategy)
        block = runtime.tensorflow_train_block(
            lambda x: tf.cast(self.model(x, training=True), tf.float32),
            tensors,
            self.slots,
            self.strategy,
            config.label_smoothing,
        )
        self._train = tf.function(block, jit_compile=jit, reduce_retracing=True)
        # inference: one graph for any batch size; XLA would compile once per shape for no gain
        self._forward = tf.function(
            lambda x: tf.cast(
                self.model(tf.cast(x, tf.float32) / 255.0, training=False), tf.float32
            ),
            input_signature=[tf.TensorSpec([None, *self.spec.input_shape], tf.uint8)],
        )

    def attach(self, images, labels):
        tf = self.tf
        self.images = tf.constant(np.asarray(images, np.uint8))
        self.labels = tf.constant(np.asarray(labels, np.int32))

    def train_steps(self, batches, scalars):
        self.require_attached()
        return self.runtime.tensorflow_train_steps(
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
        return (
            self._forward(self.tf.constant(np.asarray(images, np.uint8)))
            .numpy()
            .astype(np.float32, copy=False)
        )


class KerasTorchEngine(KerasEngine):
    """Keras on torch: fmnist-torch's autograd step on the Keras variables' torch tensors."""

    def __init__(self, config, keras):
        super().__init__(config, keras)
        import torch

        self.torch = torch
        ops, self._autograd_steps = torch_steps()
        self.torch_device = keras.src.backend.torch.core.get_device()
        self.tensors = [v.value for v in self.variables]
        self.slots = OptimizerSlots(self.optimizer, self.spec.trainable(), self.tensors, ops)
        self.fused = (
            self.spec.is_two_layer_perceptron()
            and self.optimizer.is_plain_sgd
            and self.precision == "float32"
        )

    def attach(self, images, labels):
        torch = self.torch
        self.images = torch.from_numpy(np.array(images, np.uint8)).to(self.torch_device)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64)).to(self.torch_device)

    def _logits(self, x):
        # Calling the Keras model costs ~2 ms per step on the torch backend (layer dispatch), so
        # the article's MLP runs the same Dense math on the model's own torch tensors (about 6×
        # faster per epoch, measured)
        if self.fused:
            kernel1, bias1, kernel2, bias2 = self.tensors
            return self.torch.addmm(
                bias2, self.torch.addmm(bias1, x.flatten(1), kernel1).relu(), kernel2
            )
        return self.model(x, training=True)

    def train_steps(self, batches, scalars):
        self.require_attached()
        index = self.torch.from_numpy(np.ascontiguousarray(batches, np.int64)).to(self.torch_device)
        rows = np.asarray(scalars, np.float64).tolist()
        losses, correct = self._autograd_steps(
            self._logits,
            self.tensors,
            self.slots,
            self.images,
            self.labels,
            index,
            rows,
            label_smoothing=self.label_smoothing,
        )
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    def logits(self, images):
        torch = self.torch
        with torch.no_grad():
            x = (
                torch.from_numpy(np.array(images, np.uint8))
                .to(self.torch_device)
                .to(torch.float32)
                .div_(255.0)
            )
            return self.model(x, training=False).float().cpu().numpy()


class KerasJaxEngine(KerasEngine):
    """Keras on JAX: ``model.stateless_call`` inside one jitted step, the core's update
    (``updated``) on the returned arrays; the model's variables are written back once per block."""

    def __init__(self, config, keras):
        super().__init__(config, keras)
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.jax_loss = LossOps(
            logsumexp=lambda logits: jax.nn.logsumexp(logits, axis=1),
            mean=lambda logits: jnp.mean(logits, axis=1),
            pick=lambda logits, labels: jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0],
        )
        # the order stateless_call takes the trainable values in, and each one's place in the spec's
        by_id = {id(v): name for name, v in variables(self.model, self.spec).items()}
        self.model_order = [by_id[id(v)] for v in self.model.trainable_variables]
        ops = ArrayOps(
            zeros_like=jnp.zeros_like,
            read=lambda v: v.value,
            write=None,
            sqrt=jnp.sqrt,
            to_numpy=np.asarray,
            from_numpy=lambda a, like: jnp.asarray(a),
        )
        self.slots = OptimizerSlots(
            self.optimizer, self.model_order, self.model.trainable_variables, ops
        )
        self._step = jax.jit(self._step_fn)
        self._forward = jax.jit(
            lambda trainable, non_trainable, x: self.model.stateless_call(
                trainable, non_trainable, x.astype(jnp.float32) / 255.0, training=False
            )[0].astype(jnp.float32)
        )

    def attach(self, images, labels):
        self.images = self.jnp.asarray(np.asarray(images, np.uint8))
        self.labels = self.jnp.asarray(np.asarray(labels, np.int32))

    def _step_fn(self, trainable, non_trainable, slots, rows, scalars, images, labels):
        # the data are arguments, not captured: jit would bake a captured array into the
        # program, and augmented blocks attach new images
        jax, jnp = self.jax, self.jnp
        x = images[rows].astype(jnp.float32) / 255.0
        y = labels[rows]
        smoothing = self.label_smoothing

        def loss_fn(values):
            logits, updated_state = self.model.stateless_call(
                values, non_trainable, x, training=True
            )
            logits = logits.astype(jnp.float32)
            loss = per_sample_loss(logits, y, smoothing, self.jax_loss)
            return jnp.mean(loss), (logits, updated_state)

        (loss, (logits, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable
        )
        trainable, slots = updated(self.optimizer, trainable, grads, slots, scalars, jnp.sqrt)
        correct = jnp.sum(jnp.argmax(logits, axis=1) == y)
        return trainable, non_trainable, slots, loss, correct

    def train_steps(self, batches, scalars):
        self.require_attached()
        jnp = self.jnp
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        rows = jnp.asarray(np.ascontiguousarray(batches, np.int32))
        rates = jnp.asarray(np.asarray(scalars, np.float32))
        losses, correct = [], []
        for step in range(len(batches)):
            trainable, non_trainable, self.slots.values, loss, hits = self._step(
                trainable,
                non_trainable,
                self.slots.values,
                rows[step],
                rates[step],
                self.images,
                self.labels,
            )
            losses.append(loss)
            correct.append(hits)
        for variable, value in zip(self.model.trainable_variables, trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable, strict=True):
            variable.assign(value)
        return StepResult(
            np.asarray(jnp.stack(losses)), np.asarray(jnp.stack(correct)).astype(np.int64)
        )

    def logits(self, images):
        trainable = [v.value for v in self.model.trainable_variables]
        non_trainable = [v.value for v in self.model.non_trainable_variables]
        out = self._forward(
            trainable, non_trainable, self.jnp.asarray(np.asarray(images, np.uint8))
        )
        return np.asarray(out).astype(np.float32, copy=False)


def create_engine(config: EngineConfig) -> KerasEngine:
    keras = import_keras(config.options.get("keras_backend"))
    if config.world_size > 1 and keras.backend.backend() != "tensorflow":
        from .plugin import not_data_parallel_on

        raise not_data_parallel_on(keras.backend.backend())
    engines = {"tensorflow": KerasTFEngine, "torch": KerasTorchEngine, "jax": KerasJaxEngine}
    return engines[keras.backend.backend()](config, keras)
