"""An exponential moving average of the weights, kept by the core for every backend.

``ema = d · ema + (1 - d) · weights`` with ``d = min(decay, (1 + t) / (10 + t))`` at step ``t``
(TensorFlow's ``ExponentialMovingAverage`` warm-up, so that the first steps' average is not the
initial weights). The core updates it every ``every`` steps from the engine's parameters (the
weights are taken as constant over those steps: ``d`` is the product of the steps' factors), in
float32 on the host, so every backend averages identically and a checkpoint holds it exactly.
Buffers (BatchNorm's running statistics) are averaged too. The average is what is evaluated,
saved and exported; checkpoints hold it as ``ema.{name}``.
"""

from __future__ import annotations

import numpy as np

PREFIX = "ema."


class WeightAverage:
    """The average of one run's weights (neutral names, float32)."""

    def __init__(self, decay: float, params: dict[str, np.ndarray], every: int = 5):
        self.decay, self.every = float(decay), every
        self.values = {name: np.array(value, np.float32) for name, value in params.items()}
        self.steps = 0

    def update(self, params: dict[str, np.ndarray], steps: int) -> None:
        """Fold in ``params``, the weights after ``steps`` more steps."""
        t = self.steps + np.arange(steps, dtype=np.float64)
        factor = np.float32(np.prod(np.minimum(self.decay, (1 + t) / (10 + t))))
        for name, value in params.items():
            self.values[name] *= factor
            self.values[name] += (np.float32(1) - factor) * np.asarray(value, np.float32)
        self.steps += steps

    def params(self) -> dict[str, np.ndarray]:
        """The average as float32 parameters."""
        return {name: value.copy() for name, value in self.values.items()}

    def state(self) -> dict[str, np.ndarray]:
        """For checkpoints: ``ema.{name}`` tensors and the step count (``ema.__steps__``)."""
        state = {f"{PREFIX}{name}": value.copy() for name, value in self.values.items()}
        state[f"{PREFIX}__steps__"] = np.array([self.steps], np.float32)
        return state

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.steps = int(state.pop(f"{PREFIX}__steps__", np.zeros(1))[0])
        for name in self.values:
            self.values[name] = np.array(state[f"{PREFIX}{name}"], np.float32)
