"""``Dropout``: inverted dropout in training, the identity in inference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...labels import NUM_CLASSES
from ..layer import Layer, ReferenceOp, hyper


@dataclass(frozen=True)
class Dropout(Layer):
    """Zeroes a share ``rate`` of the values and scales the kept ones by ``1 / (1 - rate)`` in
    training. Each backend draws its masks from its own generator seeded from the run's seed, so
    runs with dropout are reproducible per backend but not bit-identical across backends."""

    kind: ClassVar[str] = "Dropout"
    rate: float = hyper(0.5, minimum=0, below=1, help="share of values dropped in training")

    def reference(self, shape, state):
        return _DropoutReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        return graph.node("Identity", [x])

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        # rate 0: the masks of two backends are not the same draws (the suite checks rate > 0 apart)
        return [[Flatten(), Dense(16), ReLU(), Dropout(0.0), Dense(NUM_CLASSES)]]


class _DropoutReference(ReferenceOp):
    def forward(self, x, training):
        if not training or self.layer.rate == 0:
            self.mask = None
            return x
        keep = np.float32(1 - self.layer.rate)
        self.mask = (self.state.rng.random(x.shape, dtype=np.float32) < keep) / keep
        return x * self.mask

    def backward(self, dy):
        return dy if self.mask is None else dy * self.mask
