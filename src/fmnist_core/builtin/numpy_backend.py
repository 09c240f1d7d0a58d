"""The NumPy reference backend: every layer type's own reference maths (``Layer.reference``).

It is the default when no framework plugin is installed and the reference the framework
backends are checked against. Activations are channels-last as the neutral layout. The
article's MLP with plain SGD takes a fused path that reuses preallocated buffers and updates in
place.
"""

from __future__ import annotations

import numpy as np

from ..engine.backend import Backend, Engine, EngineConfig, StepResult
from ..engine.loss import NUMPY_LOSS, gradient, per_sample_loss
from ..engine.optimizer_slots import NUMPY_OPS, OptimizerSlots
from ..hookspecs import hookimpl
from ..spec.layer import Layer, ReferenceState

# Pixels are divided by 255 (not multiplied by 1/255) as torchvision's ToTensor does, so that
# every backend sees bit-identical inputs.
MAX = np.float32(255.0)


def cross_entropy(
    logits: np.ndarray, labels: np.ndarray, smoothing: float = 0.0
) -> tuple[float, np.ndarray, int]:
    """Mean loss, its gradient with respect to the logits, and the correct count. With
    ``smoothing`` ε the target is (1 - ε) · one-hot + ε / classes."""
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels))
    loss = per_sample_loss(logits, labels, smoothing, NUMPY_LOSS).mean()
    return float(loss), gradient(logits, labels, smoothing), correct


class NumpyEngine(Engine):
    """Any ``ModelSpec`` with any optimizer, layer by layer through each layer's reference."""

    device = "cpu"

    def __init__(self, config: EngineConfig):
        self.spec, self.optimizer = config.model, config.optimizer
        self.smoothing = config.label_smoothing
        self.params = {
            k: np.array(v, np.float32)
            for k, v in (config.initial_params or config.model.init_params(config.seed)).items()
        }
        state = ReferenceState(
            self.params, {}, np.random.default_rng(np.random.SeedSequence([config.seed, 0xD509]))
        )
        self.grads = state.grads
        self.ops = [layer.reference(shape, state) for layer, shape in self.spec.stack()]
        self.trainable = self.spec.trainable()
        self.slots = OptimizerSlots(
            self.optimizer, self.trainable, [self.params[n] for n in self.trainable], NUMPY_OPS
        )

    def attach(self, images, labels):
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.intp)

    def _forward(self, x, training):
        for op in self.ops:
            x = op.forward(x, training)
        return x

    def train_steps(self, batches, scalars):
        self.require_attached()
        losses = np.empty(len(batches), np.float32)
        correct = np.empty(len(batches), np.int64)
        params = [self.params[name] for name in self.trainable]
        # a diverging loss is the core's to report
        with one_blas_thread(self.spec), np.errstate(over="ignore", invalid="ignore"):
            for step, index in enumerate(batches):
                x = self.images[index].astype(np.float32) / MAX
                logits = self._forward(x, training=True)
                losses[step], grad, correct[step] = cross_entropy(
                    logits, self.labels[index], self.smoothing
                )
                for op in reversed(self.ops):
                    grad = op.backward(grad)
                self.slots.apply(
                    params, [self.grads[name] for name in self.trainable], list(scalars[step])
                )
        return StepResult(losses, correct)

    def logits(self, images):
        x = np.asarray(images, np.uint8).astype(np.float32) / MAX
        return self._forward(x, training=False).astype(np.float32, copy=False)

    def get_params(self):
        return {k: v.copy() for k, v in self.params.items()}

    def set_params(self, params):
        for name, value in params.items():
            self.params[name][...] = value


class NumpyMLPEngine(Engine):
    """The fast path for Flatten-Dense-ReLU-Dense with plain SGD: fused steps, reused buffers."""

    device = "cpu"

    def __init__(self, config: EngineConfig):
        self.spec = config.model
        self.first, self.second = config.model.layers[1].name, config.model.layers[3].name
        self.set_params(config.initial_params or config.model.init_params(config.seed))
        self._buffers: dict[int, tuple] = {}

    def set_params(self, params):
        self.w1 = np.array(params[f"{self.first}.weight"], dtype=np.float32)
        self.b1 = np.array(params[f"{self.first}.bias"], dtype=np.float32)
        self.w2 = np.array(params[f"{self.second}.weight"], dtype=np.float32)
        self.b2 = np.array(params[f"{self.second}.bias"], dtype=np.float32)

    def get_params(self):
        return {
            f"{self.first}.weight": self.w1.copy(),
            f"{self.first}.bias": self.b1.copy(),
            f"{self.second}.weight": self.w2.copy(),
            f"{self.second}.bias": self.b2.copy(),
        }

    def attach(self, images, labels):
        self.images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
        self.labels = np.asarray(labels, dtype=np.intp)

    def _forward(self, x):
        hidden = x @ self.w1
        hidden += self.b1
        np.maximum(hidden, 0, out=hidden)
        logits = hidden @ self.w2
        logits += self.b2
        return hidden, logits

    def logits(self, images):
        x = np.asarray(images, dtype=np.uint8).reshape(len(images), -1).astype(np.float32)
        x /= MAX
        return self._forward(x)[1]

    def _buffers_for(self, batch: int):
        if batch not in self._buffers:
            self._buffers[batch] = (
                np.empty((batch, self.w1.shape[0]), np.uint8),
                np.empty((batch, self.w1.shape[0]), np.float32),
                np.arange(batch),
            )
        return self._buffers[batch]

    def train_steps(self, batches, scalars):
        self.require_attached()
        steps, batch = batches.shape
        raw, x, rows = self._buffers_for(batch)
        losses = np.empty(steps, np.float32)
        correct = np.empty(steps, np.int64)
        rates = np.asarray(scalars, np.float32)[:, 0]
        # a diverging loss is the core's to report
        with one_blas_thread(self.spec), np.errstate(over="ignore", invalid="ignore"):
            self._steps(batches, raw, x, rows, losses, correct, rates)
        return StepResult(losses, correct)

    def _steps(self, batches, raw, x, rows, losses, correct, rates):
        w1, b1, w2, b2 = self.w1, self.b1, self.w2, self.b2
        batch = batches.shape[1]
        for step in range(len(batches)):
            lr = rates[step]
            index = batches[step]
            np.take(self.images, index, axis=0, out=raw)
            np.divide(raw, MAX, out=x)
            y = self.labels[index]
            hidden, logits = self._forward(x)
            correct[step] = np.count_nonzero(logits.argmax(axis=1) == y)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            total = probs.sum(axis=1, keepdims=True)
            losses[step] = np.log(total[:, 0]).sum() / batch - logits[rows, y].sum() / batch
            probs /= total
            probs[rows, y] -= 1.0
            probs *= np.float32(1.0 / batch)  # d loss / d logits
            grad_hidden = probs @ w2.T
            grad_hidden *= hidden > 0
            w2 -= lr * (hidden.T @ probs)
            b2 -= lr * probs.sum(axis=0)
            w1 -= lr * (x.T @ grad_hidden)
            b1 -= lr * grad_hidden.sum(axis=0)


def one_blas_thread(spec):
    """A context in which BLAS uses one thread, for models ``ModelSpec.is_small`` calls small
    (``threadpoolctl``); otherwise BLAS's own."""
    import contextlib

    if not spec.is_small():
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


class NumpyBackend(Backend):
    name = "numpy"
    description = "NumPy reference (every layer type's own forward/backward), always available"
    priority = 0
    requires = ("numpy",)

    def lowers(self, kind: str) -> bool:
        from ..plugins import layer_types

        layer = layer_types().get(kind)
        return layer is not None and layer.reference is not Layer.reference

    def create_engine(self, config: EngineConfig) -> Engine:
        missing = sorted(kind for kind in config.model.kinds() if not self.lowers(kind))
        if missing:
            from ..engine.lowering import missing_lowering

            raise missing_lowering(self.name, missing[0])
        fast = config.optimizer.is_plain_sgd and not config.label_smoothing
        if config.model.is_two_layer_perceptron() and fast:
            return NumpyMLPEngine(config)
        return NumpyEngine(config)


@hookimpl
def fmnist_backends():
    return [NumpyBackend()]
