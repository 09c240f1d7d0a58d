"""``ReLU``: ``max(x, 0)``, element-wise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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
