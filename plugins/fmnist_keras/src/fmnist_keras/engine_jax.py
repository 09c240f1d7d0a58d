"""Keras on JAX: ``stateless_call`` inside one jitted step, the core's update."""

from __future__ import annotations

import numpy as np

from fmnist_core import StepResult
from fmnist_core.plugin_api import ArrayOps, LossOps, OptimizerSlots, per_sample_loss, updated

from .engine import KerasEngine, variables


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
