"""The ``Swish`` layer type: its hyper-parameter, shape rule, NumPy reference and ONNX lowering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fmnist_core import Conv2D, Dense, Flatten, Layer, hyper
from fmnist_core.plugin_api import ReferenceOp


@dataclass(frozen=True)
class Swish(Layer):
    """``x · sigmoid(beta · x)``, element-wise (no parameters: the shape stays)."""

    kind: ClassVar[str] = "Swish"
    beta: float = hyper(1.0, above=0.0, help="the slope inside the sigmoid")

    def reference(self, shape, state):
        return SwishReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        gate = graph.node("Sigmoid", [graph.node("Mul", [x, graph.const(np.float32(self.beta))])])
        return graph.node("Mul", [x, gate])

    @classmethod
    def examples(cls):
        return [
            [Flatten(), Dense(24), Swish(), Dense(10)],
            [Conv2D(4, 3, stride=2), Swish(beta=1.5), Flatten(), Dense(10)],
        ]


class SwishReference(ReferenceOp):
    def forward(self, x, training):
        self.x = x
        self.gate = np.float32(1) / (np.float32(1) + np.exp(-np.float32(self.layer.beta) * x))
        return x * self.gate

    def backward(self, dy):
        beta = np.float32(self.layer.beta)
        return dy * (self.gate + beta * self.x * self.gate * (np.float32(1) - self.gate))
