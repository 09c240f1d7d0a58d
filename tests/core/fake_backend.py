"""A fake backend for the core's own tests: it records every call and 'learns' nothing useful.

Its step is deterministic arithmetic on the parameters, so the core's loop, metrics and
callbacks can be checked without any framework or real model.
"""

import numpy as np

from fmnist_core import Backend, Engine, Option, StepResult, hookimpl


class FakeEngine(Engine):
    def __init__(self, config):
        self.config = config
        self.params = {
            k: v.copy()
            for k, v in (config.initial_params or config.model.init_params(config.seed)).items()
        }
        self.calls = []
        self.nan_after = config.options.get("nan_after")
        self.steps_done = 0

    def attach(self, images, labels):
        self.calls.append(("attach", images.shape))
        self.labels = np.asarray(labels)

    def train_steps(self, batches, scalars):
        self.calls.append(("train_steps", batches.shape))
        k = len(batches)
        losses = np.array([1.0 / (self.steps_done + i + 1) for i in range(k)], np.float32)
        self.steps_done += k
        if self.nan_after is not None and self.steps_done > self.nan_after:
            losses[-1] = np.nan
        self.params["fc2.bias"] += 0.01 * k
        correct = (self.labels[batches] % 2 == 0).sum(axis=1)
        return StepResult(losses, correct)

    def logits(self, images):
        out = np.zeros((len(images), 10), np.float32)
        out[np.arange(len(images)), images.reshape(len(images), -1).sum(axis=1) % 10] = 1.0
        return out

    def get_params(self):
        return {k: v.copy() for k, v in self.params.items()}

    def set_params(self, params):
        self.params = {k: np.array(v) for k, v in params.items()}


class FakeBackend(Backend):
    name = "fake"
    description = "records calls, for the core's tests"
    priority = -1
    options = (Option("nan_after", int, None, "make the loss NaN after this many steps"),)

    def create_engine(self, config):
        return FakeEngine(config)


class FakePlugin:
    @hookimpl
    def fmnist_backends(self):
        return [FakeBackend()]
