"""The NumPy reference backend: the article's MLP with hand-written forward, backward and SGD.

It is the default when no framework plugin is installed and the reference the framework
backends are checked against. Every step reuses preallocated float32 buffers and updates the
parameters in place.
"""

from __future__ import annotations

import numpy as np

from ..backend import Backend, Engine, EngineConfig, StepResult
from ..errors import BackendError
from ..hookspecs import hookimpl

# Pixels are divided by 255 (not multiplied by 1/255) as torchvision's ToTensor does, so that
# every backend sees bit-identical inputs.
MAX = np.float32(255.0)


class NumpyMLPEngine(Engine):
    device = "cpu"

    def __init__(self, config: EngineConfig):
        params = config.initial_params or config.model.init_params(config.seed)
        self.set_params(params)
        self.learning_rate = np.float32(config.learning_rate)
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self._buffers: dict[int, tuple] = {}

    def set_params(self, params):
        self.w1 = np.array(params["fc1.weight"], dtype=np.float32)
        self.b1 = np.array(params["fc1.bias"], dtype=np.float32)
        self.w2 = np.array(params["fc2.weight"], dtype=np.float32)
        self.b2 = np.array(params["fc2.bias"], dtype=np.float32)

    def get_params(self):
        return {"fc1.weight": self.w1.copy(), "fc1.bias": self.b1.copy(),
                "fc2.weight": self.w2.copy(), "fc2.bias": self.b2.copy()}

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
        flat = np.asarray(images, dtype=np.uint8).reshape(len(images), -1)
        out = np.empty((len(flat), self.w2.shape[1]), dtype=np.float32)
        for start in range(0, len(flat), 8192):
            x = flat[start : start + 8192].astype(np.float32)
            x /= MAX
            out[start : start + 8192] = self._forward(x)[1]
        return out

    def _buffers_for(self, batch: int):
        if batch not in self._buffers:
            self._buffers[batch] = (
                np.empty((batch, self.w1.shape[0]), np.uint8),
                np.empty((batch, self.w1.shape[0]), np.float32),
                np.arange(batch),
            )
        return self._buffers[batch]

    def train_steps(self, batches):
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        steps, batch = batches.shape
        raw, x, rows = self._buffers_for(batch)
        losses = np.empty(steps, np.float32)
        correct = np.empty(steps, np.int64)
        lr = self.learning_rate
        w1, b1, w2, b2 = self.w1, self.b1, self.w2, self.b2
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging loss is the core's to report
            self._steps(batches, raw, x, rows, losses, correct, lr, w1, b1, w2, b2)
        return StepResult(losses, correct)

    def _steps(self, batches, raw, x, rows, losses, correct, lr, w1, b1, w2, b2):
        batch = batches.shape[1]
        for step in range(len(batches)):
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
    description = "NumPy reference (hand-written forward/backward), always available"
    priority = 0
    requires = ("numpy",)
    models = ("mlp",)

    def create_engine(self, config: EngineConfig) -> Engine:
        if config.model.name not in self.models:
            raise BackendError(
                f"backend 'numpy' has no model {config.model.name!r}; it supports {', '.join(self.models)}",
                fix="pick another backend or model",
            )
        return NumpyMLPEngine(config)


@hookimpl
def fmnist_backends():
    return [NumpyBackend()]
