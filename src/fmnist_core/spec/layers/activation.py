"""Element-wise activations: ``ReLU`` (``max(x, 0)``) and ``GELU`` (``x · Φ(x)``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...labels import NUM_CLASSES
from ..layer import Layer, ReferenceOp


@dataclass(frozen=True)
class ReLU(Layer):
    """``max(x, 0)``; its gradient at 0 is 0, as in every framework."""

    kind: ClassVar[str] = "ReLU"
    capabilities: ClassVar[frozenset[str]] = frozenset({"relu"})

    def reference(self, shape, state):
        return _ReLUReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        return graph.node("Relu", [x])

    @classmethod
    def examples(cls):
        Conv2D = Layer.of_kind("Conv2D")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        return [[Conv2D(4, 3, stride=2), ReLU(), Flatten(), Dense(16), ReLU(), Dense(NUM_CLASSES)]]


class _ReLUReference(ReferenceOp):
    def forward(self, x, training):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


@dataclass(frozen=True)
class GELU(Layer):
    """``x · Φ(x)``, Φ the standard normal's distribution function: the exact GELU (erf, not the
    tanh approximation), as ``torch.nn.GELU()``, ``tf.nn.gelu(approximate=False)`` and Keras'
    ``gelu`` compute it."""

    kind: ClassVar[str] = "GELU"

    def reference(self, shape, state):
        return _GELUReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        root_half = graph.const(np.float32(np.sqrt(0.5)))
        erf = graph.node("Erf", [graph.node("Mul", [x, root_half])])
        phi = graph.node("Mul", [graph.node("Add", [erf, graph.const(np.float32(1))]),
                                 graph.const(np.float32(0.5))])  # fmt: skip
        return graph.node("Mul", [x, phi])

    @classmethod
    def examples(cls):
        Conv2D = Layer.of_kind("Conv2D")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        return [[Conv2D(4, 3, stride=2), GELU(), Flatten(), Dense(16), GELU(), Dense(NUM_CLASSES)]]


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 (Abramowitz and Stegun 7.1.26: within 1.5e-7, under float32's rounding of
    Φ near 1); NumPy has none of its own."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))  # fmt: skip


class _GELUReference(ReferenceOp):
    def forward(self, x, training):
        wide = x.astype(np.float64)
        self.x, self.phi = wide, 0.5 * (1.0 + _erf(wide * np.sqrt(0.5)))
        return (wide * self.phi).astype(np.float32)

    def backward(self, dy):
        density = np.exp(-0.5 * self.x * self.x) / np.sqrt(2.0 * np.pi)
        return (dy * (self.phi + self.x * density)).astype(np.float32)
