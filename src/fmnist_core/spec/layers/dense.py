"""``Dense``: a fully connected layer, kernel ``(in, out)`` and bias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...labels import NUM_CLASSES
from ..layer import Layer, ParamSpec, ReferenceOp, hyper


@dataclass(frozen=True)
class Dense(Layer):
    """``y = x @ weight + bias``; ``weight (in, out)`` (torch's ``Linear.weight`` is transposed)."""

    kind: ClassVar[str] = "Dense"
    prefix: ClassVar[str] = "fc"
    capabilities: ClassVar[frozenset[str]] = frozenset({"affine"})
    units: int = hyper(NUM_CLASSES, minimum=1, help="output features")

    def output_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(
                f"needs a flat input, got shape {shape}|add Flatten or GlobalAvgPool before it"
            )
        return (self.units,)

    def params(self, shape):
        return [
            ParamSpec(
                f"{self.name}.weight",
                (shape[0], self.units),
                "glorot_uniform",
                fans=(shape[0], self.units),
                layout="dense",
            ),
            ParamSpec(f"{self.name}.bias", (self.units,), "zeros"),
        ]

    def reference(self, shape, state):
        return _DenseReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        return graph.node("Gemm", [x, f"{self.name}.weight", f"{self.name}.bias"])

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        Flatten = Layer.of_kind("Flatten")

        return [[Flatten(), Dense(24), ReLU(), Dense(NUM_CLASSES)]]


class _DenseReference(ReferenceOp):
    def forward(self, x, training):
        self.x = x
        return x @ self.param("weight") + self.param("bias")

    def backward(self, dy):
        self.set_grad("weight", self.x.T @ dy)
        self.set_grad("bias", dy.sum(axis=0))
        return dy @ self.param("weight").T
