"""``Residual``: a stack of layers whose output is added to its input (He et al.'s shortcut)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ...labels import NUM_CLASSES
from ..layer import Layer, ReferenceOp, Shape, as_image, hyper, image_shape
from .conv import Conv2D
from .dense import Dense


@dataclass(frozen=True)
class Residual(Layer):
    """``body(x) + shortcut(x)``. The shortcut is ``x`` itself when the body keeps the shape, else
    (``projection="auto"``) a 1×1 ``Conv2D`` with the body's stride and channels for images or a
    ``Dense`` for vectors, named ``{name}.proj``; ``"always"`` projects even when the shape stays,
    ``"none"`` never does (then a body that changes the shape is an error). The body's layers are
    named inside the block (``res1.conv1``) and may hold ``Residual`` blocks themselves."""

    kind: ClassVar[str] = "Residual"
    prefix: ClassVar[str] = "res"
    body: Sequence[Layer] = ()  # stored as a tuple
    projection: str = hyper("auto", choices=("auto", "always", "none"))

    def __post_init__(self):
        if isinstance(self.body, list):
            object.__setattr__(self, "body", tuple(self.body))

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.body, tuple) or not self.body:
            raise ValueError(
                "needs a body of at least one layer|pass Residual([Conv2D(16, 3), ReLU(), ...])"
            )

    def children(self):
        return self.body

    def with_children(self, children):
        return replace(self, body=tuple(children))

    def body_output(self, shape: Shape) -> Shape:
        for layer in self.body:
            shape = layer.output_shape(shape)
        return shape

    def shortcut(self, shape: Shape) -> Layer | None:
        """The projection of the input for an input of ``shape`` (None: the input itself)."""
        out = self.body_output(shape)
        same = (image_shape(shape) if len(shape) >= 2 else shape) == out
        if self.projection == "none" or (self.projection == "auto" and same):
            if not same:
                raise ValueError(
                    f"its body turns {shape} into {out}, and projection='none' adds the input as "
                    "it "
                    "is|use projection='auto', or a body that keeps the shape"
                )
            return None
        if len(out) == 1:
            if len(shape) != 1:
                raise ValueError(
                    f"its body turns the image {shape} into the vector {out}, which a shortcut "
                    "cannot follow|end the body with an image, and Flatten after the block"
                )
            return Dense(out[0], name=f"{self.name}.proj")
        if len(shape) == 1:
            raise ValueError(
                f"its body turns the vector {shape} into the image {out}|keep the body flat"
            )
        (h, w, _), (h2, w2, c2) = image_shape(shape), out
        stride = -(-h // h2)
        if -(-h // stride) != h2 or -(-w // stride) != w2:
            raise ValueError(
                f"its body turns {h}×{w} into {h2}×{w2}, which no 1×1 projection with a stride "
                "gives|downsample inside the body by an integer stride with padding='same'"
            )
        return Conv2D(c2, 1, stride=stride, padding="same", name=f"{self.name}.proj")

    def output_shape(self, shape):
        self.shortcut(shape)  # the shapes must be able to meet
        return self.body_output(shape)

    def params(self, shape):
        found, inner = [], shape
        for layer in self.body:
            found += layer.params(inner)
            inner = layer.output_shape(inner)
        projection = self.shortcut(shape)
        return found + (projection.params(shape) if projection else [])

    def macs(self, shape):
        total, inner = 0, shape
        for layer in self.body:
            total += layer.macs(inner)
            inner = layer.output_shape(inner)
        projection = self.shortcut(shape)
        return total + (projection.macs(shape) if projection else 0)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        prefix = f"{self.name}."
        for item in out.get("body", []):  # the body's names as written by the user: local
            if item.get("name", "").startswith(prefix):
                item["name"] = item["name"][len(prefix) :]
        return out

    @classmethod
    def from_dict(cls, values, build_stack):
        values = dict(values)
        return cls(body=build_stack(values.pop("body", [])), **values)

    def reference(self, shape, state):
        return _ResidualReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        y = graph.run(self.body, x, shape)
        projection = self.shortcut(shape)
        return graph.node("Add", [y, projection.to_onnx(graph, x, shape) if projection else x])

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        BatchNorm = Layer.of_kind("BatchNorm")
        Flatten = Layer.of_kind("Flatten")
        GlobalAvgPool = Layer.of_kind("GlobalAvgPool")

        return [
            # the shape stays: the input itself is the shortcut
            [
                Conv2D(6, 3, stride=2),
                ReLU(),
                Residual([Conv2D(6, 3), BatchNorm(), ReLU(), Conv2D(6, 3)]),
                ReLU(),
                GlobalAvgPool(),
                Dense(NUM_CLASSES),
            ],
            # stride 2 and more channels: a 1×1 projection with stride 2
            [
                Conv2D(4, 3, stride=2),
                Residual([Conv2D(8, 3, stride=2), ReLU(), Conv2D(8, 3)]),
                ReLU(),
                Flatten(),
                Dense(NUM_CLASSES),
            ],
            # a Residual inside the stack of a Residual
            [
                Conv2D(4, 3, stride=2),
                Residual([Conv2D(4, 3), ReLU(), Residual([Conv2D(4, 3), ReLU()]), ReLU()]),
                Flatten(),
                Dense(NUM_CLASSES),
            ],
            # vectors, projected by a Dense
            [
                Flatten(),
                Dense(16),
                Residual([Dense(16), ReLU(), Dense(8)]),
                ReLU(),
                Dense(NUM_CLASSES),
            ],
        ]


class _ResidualReference(ReferenceOp):
    def __init__(self, layer, shape, state):
        super().__init__(layer, shape, state)
        self.body, inner = [], shape
        for child in layer.body:
            self.body.append(child.reference(inner, state))
            inner = child.output_shape(inner)
        projection = layer.shortcut(shape)
        self.projection = projection.reference(shape, state) if projection else None

    def forward(self, x, training):
        y = x
        for op in self.body:
            y = op.forward(y, training)
        return y + (
            self.projection.forward(x, training)
            if self.projection
            else as_image(x)
            if y.ndim == 4
            else x
        )

    def backward(self, dy):
        grad = dy
        for op in reversed(self.body):
            grad = op.backward(grad)
        shortcut = self.projection.backward(dy) if self.projection else dy
        return grad + shortcut
