"""The NumPy reference backend: every layer of the core's vocabulary, forward and backward by hand.

It is the default when no framework plugin is installed and the reference the framework
backends are checked against. Convolutions and pooling work on strided windows
(``sliding_window_view``), activations are channels-last as the neutral layout. The article's
MLP with plain SGD takes a fused path that reuses preallocated buffers and updates in place.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..backend import Backend, Engine, EngineConfig, StepResult
from ..errors import BackendError
from ..hookspecs import hookimpl
from ..models import BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, ReLU

# Pixels are divided by 255 (not multiplied by 1/255) as torchvision's ToTensor does, so that
# every backend sees bit-identical inputs.
MAX = np.float32(255.0)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Mean loss, its gradient with respect to the logits, and the correct count."""
    batch = len(labels)
    rows = np.arange(batch)
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    total = probs.sum(axis=1, keepdims=True)
    loss = np.log(total[:, 0]).sum() / batch - shifted[rows, labels].sum() / batch
    probs /= total
    probs[rows, labels] -= 1.0
    probs *= np.float32(1.0 / batch)
    return float(loss), probs, correct


def _sum(x: np.ndarray, axis) -> np.ndarray:
    """A float32 sum accumulated in float64 (long reductions across axes)."""
    return x.sum(axis=axis, dtype=np.float64).astype(np.float32)


class _Op:
    """One layer: ``forward`` caches what ``backward`` needs; ``backward`` fills ``grads``."""

    def __init__(self, layer, params, grads):
        self.layer, self.params, self.grads = layer, params, grads

    def forward(self, x, training):
        return x

    def backward(self, dy):
        return dy


class _Flatten(_Op):
    def forward(self, x, training):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


class _Dense(_Op):
    def forward(self, x, training):
        self.x = x
        return x @ self.params[f"{self.layer.name}.weight"] + self.params[f"{self.layer.name}.bias"]

    def backward(self, dy):
        name = self.layer.name
        self.grads[f"{name}.weight"] = self.x.T @ dy
        self.grads[f"{name}.bias"] = dy.sum(axis=0)
        return dy @ self.params[f"{name}.weight"].T


class _ReLU(_Op):
    def forward(self, x, training):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


def _windows(x, size, stride):
    """(N, Ho, Wo, C, size, size) strided windows of (N, H, W, C)."""
    return sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]


class _Conv2D(_Op):
    def forward(self, x, training):
        layer = self.layer
        if x.ndim == 3:
            x = x[..., None]
        self.in_shape = x.shape
        if layer.padding == "same":
            (top, bottom), (left, right) = layer.same_padding(x.shape[1]), layer.same_padding(x.shape[2])
            self.pads = (top, left)
            x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
        else:
            self.pads = (0, 0)
        self.padded_shape = x.shape
        k = layer.kernel
        windows = _windows(x, k, layer.stride)  # (N, Ho, Wo, C, k, k)
        n, ho, wo = windows.shape[:3]
        self.cols = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(n * ho * wo, -1)
        weight = self.params[f"{layer.name}.weight"].reshape(-1, layer.filters)
        out = self.cols @ weight + self.params[f"{layer.name}.bias"]
        return out.reshape(n, ho, wo, layer.filters)

    def backward(self, dy):
        layer, k, s = self.layer, self.layer.kernel, self.layer.stride
        n, ho, wo, f = dy.shape
        flat = dy.reshape(-1, f)
        weight = self.params[f"{layer.name}.weight"]
        self.grads[f"{layer.name}.weight"] = (self.cols.T @ flat).reshape(weight.shape)
        self.grads[f"{layer.name}.bias"] = _sum(flat, 0)
        dcols = (flat @ weight.reshape(-1, f).T).reshape(n, ho, wo, k, k, -1)
        dx = np.zeros(self.padded_shape, np.float32)
        for i in range(k):
            for j in range(k):
                dx[:, i : i + s * ho : s, j : j + s * wo : s, :] += dcols[:, :, :, i, j, :]
        top, left = self.pads
        h, w = self.in_shape[1:3]
        return dx[:, top : top + h, left : left + w, :]


class _MaxPool2D(_Op):
    def forward(self, x, training):
        if x.ndim == 3:
            x = x[..., None]
        self.in_shape = x.shape
        p, s = self.layer.pool, self.layer.step
        windows = _windows(x, p, s)
        flat = windows.reshape(*windows.shape[:4], p * p)
        self.arg = flat.argmax(axis=-1)
        return np.take_along_axis(flat, self.arg[..., None], axis=-1)[..., 0]

    def backward(self, dy):
        p, s = self.layer.pool, self.layer.step
        _, ho, wo, _ = dy.shape
        dx = np.zeros(self.in_shape, np.float32)
        for i in range(p):
            for j in range(p):
                dx[:, i : i + s * ho : s, j : j + s * wo : s, :] += dy * (self.arg == i * p + j)
        return dx


class _BatchNorm(_Op):
    def forward(self, x, training):
        name, layer = self.layer.name, self.layer
        axes = tuple(range(x.ndim - 1))
        gamma, beta = self.params[f"{name}.weight"], self.params[f"{name}.bias"]
        if not training:
            std = np.sqrt(self.params[f"{name}.running_var"] + np.float32(layer.eps))
            return (x - self.params[f"{name}.running_mean"]) / std * gamma + beta
        # statistics over N·H·W values accumulate in float64: NumPy sums other than along the last
        # axis are sequential, and float32 would drift by ~1e-5 over 100,000 values
        mean = x.mean(axis=axes, dtype=np.float64).astype(np.float32)
        var = ((x - mean) ** 2).mean(axis=axes, dtype=np.float64).astype(np.float32)
        self.inv_std = np.float32(1.0) / np.sqrt(var + np.float32(layer.eps))
        self.xhat = (x - mean) * self.inv_std
        self.axes, self.count = axes, x.size // x.shape[-1]
        m = np.float32(layer.momentum)
        running_mean, running_var = self.params[f"{name}.running_mean"], self.params[f"{name}.running_var"]
        running_mean[...] = (1 - m) * running_mean + m * mean
        running_var[...] = (1 - m) * running_var + m * var
        return self.xhat * gamma + beta

    def backward(self, dy):
        name = self.layer.name
        gamma = self.params[f"{name}.weight"]
        self.grads[f"{name}.weight"] = _sum(dy * self.xhat, self.axes)
        self.grads[f"{name}.bias"] = _sum(dy, self.axes)
        dxhat = dy * gamma
        n = np.float32(self.count)
        return (self.inv_std / n) * (n * dxhat - _sum(dxhat, self.axes) - self.xhat * _sum(dxhat * self.xhat, self.axes))


class _Dropout(_Op):
    def __init__(self, layer, params, grads, rng):
        super().__init__(layer, params, grads)
        self.rng = rng

    def forward(self, x, training):
        if not training or self.layer.rate == 0:
            self.mask = None
            return x
        keep = np.float32(1 - self.layer.rate)
        self.mask = (self.rng.random(x.shape, dtype=np.float32) < keep) / keep
        return x * self.mask

    def backward(self, dy):
        return dy if self.mask is None else dy * self.mask


class _GlobalAvgPool(_Op):
    def forward(self, x, training):
        if x.ndim == 3:
            x = x[..., None]
        self.in_shape = x.shape
        return x.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)

    def backward(self, dy):
        n, h, w, c = self.in_shape
        return np.broadcast_to((dy / np.float32(h * w))[:, None, None, :], self.in_shape).astype(np.float32)


OPS = {Flatten: _Flatten, Dense: _Dense, ReLU: _ReLU, Conv2D: _Conv2D, MaxPool2D: _MaxPool2D,
       BatchNorm: _BatchNorm, GlobalAvgPool: _GlobalAvgPool}


class NumpyEngine(Engine):
    """Any ``ModelSpec`` with any optimizer, layer by layer."""

    device = "cpu"

    def __init__(self, config: EngineConfig):
        self.spec, self.optimizer = config.model, config.optimizer
        self.params = {k: np.array(v, np.float32) for k, v in
                       (config.initial_params or config.model.init_params(config.seed)).items()}
        self.grads: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xD509]))
        self.ops = [(_Dropout(layer, self.params, self.grads, rng) if isinstance(layer, Dropout)
                     else OPS[type(layer)](layer, self.params, self.grads)) for layer in self.spec.layers]
        self.trainable = self.spec.trainable()
        self.slots = {(slot, name): np.zeros_like(self.params[name])
                      for slot in self.optimizer.slots for name in self.trainable}
        self.images: np.ndarray | None = None

    def attach(self, images, labels):
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.intp)

    def _forward(self, x, training):
        for op in self.ops:
            x = op.forward(x, training)
        return x

    def train_steps(self, batches, scalars):
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        losses = np.empty(len(batches), np.float32)
        correct = np.empty(len(batches), np.int64)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging loss is the core's to report
            for step, index in enumerate(batches):
                x = self.images[index].astype(np.float32) / MAX
                logits = self._forward(x, training=True)
                losses[step], grad, correct[step] = cross_entropy(logits, self.labels[index])
                for op in reversed(self.ops):
                    grad = op.backward(grad)
                row = list(scalars[step])
                for name in self.trainable:
                    slots = [self.slots[(slot, name)] for slot in self.optimizer.slots]
                    new, new_slots = self.optimizer.update(self.params[name], self.grads[name], slots, row, np.sqrt)
                    self.params[name][...] = new
                    for slot, value in zip(self.optimizer.slots, new_slots, strict=True):
                        self.slots[(slot, name)][...] = value
        return StepResult(losses, correct)

    def logits(self, images):
        x = np.asarray(images, np.uint8).astype(np.float32) / MAX
        return self._forward(x, training=False).astype(np.float32, copy=False)

    def get_params(self):
        return {k: v.copy() for k, v in self.params.items()}

    def set_params(self, params):
        for name, value in params.items():
            self.params[name][...] = value

    def optimizer_state(self):
        return {f"{slot}.{name}": value.copy() for (slot, name), value in self.slots.items()}

    def set_optimizer_state(self, state):
        for (slot, name), value in self.slots.items():
            value[...] = state[f"{slot}.{name}"]


class NumpyMLPEngine(Engine):
    """The fast path for Flatten-Dense-ReLU-Dense with plain SGD: fused steps, reused buffers."""

    device = "cpu"

    def __init__(self, config: EngineConfig):
        self.first, self.second = config.model.layers[1].name, config.model.layers[3].name
        self.set_params(config.initial_params or config.model.init_params(config.seed))
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self._buffers: dict[int, tuple] = {}

    def set_params(self, params):
        self.w1 = np.array(params[f"{self.first}.weight"], dtype=np.float32)
        self.b1 = np.array(params[f"{self.first}.bias"], dtype=np.float32)
        self.w2 = np.array(params[f"{self.second}.weight"], dtype=np.float32)
        self.b2 = np.array(params[f"{self.second}.bias"], dtype=np.float32)

    def get_params(self):
        return {f"{self.first}.weight": self.w1.copy(), f"{self.first}.bias": self.b1.copy(),
                f"{self.second}.weight": self.w2.copy(), f"{self.second}.bias": self.b2.copy()}

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
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        steps, batch = batches.shape
        raw, x, rows = self._buffers_for(batch)
        losses = np.empty(steps, np.float32)
        correct = np.empty(steps, np.int64)
        rates = np.asarray(scalars, np.float32)[:, 0]
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging loss is the core's to report
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


class NumpyBackend(Backend):
    name = "numpy"
    description = "NumPy reference (hand-written forward/backward of every layer), always available"
    priority = 0
    requires = ("numpy",)

    def create_engine(self, config: EngineConfig) -> Engine:
        if config.model.is_mlp() and config.optimizer.is_plain_sgd:
            return NumpyMLPEngine(config)
        return NumpyEngine(config)


@hookimpl
def fmnist_backends():
    return [NumpyBackend()]
