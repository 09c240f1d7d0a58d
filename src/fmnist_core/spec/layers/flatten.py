"""``Flatten``: an image ``(H, W, C)`` read as one vector in that (channels-last) order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ...labels import NUM_CLASSES
from ..layer import Layer, ReferenceOp


@dataclass(frozen=True)
class Flatten(Layer):
    """``(H, W, C)`` → ``(H·W·C,)`` in the neutral order (TF/Keras'; torch permutes first)."""

    kind: ClassVar[str] = "Flatten"
    capabilities: ClassVar[frozenset[str]] = frozenset({"flatten"})

    def output_shape(self, shape):
        return (math.prod(shape),)

    def reference(self, shape, state):
        return _FlattenReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        if len(shape) == 1:
            return x
        return graph.node("Flatten", [graph.node("Transpose", [x], perm=[0, 2, 3, 1])], axis=1)

    @classmethod
    def examples(cls):
        Dense = Layer.of_kind("Dense")

        return [[Flatten(), Dense(NUM_CLASSES)]]


class _FlattenReference(ReferenceOp):
    def forward(self, x, training):
        self.in_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape(self.in_shape)
