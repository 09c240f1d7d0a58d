"""``Conv2D``: a 2-D convolution, kernel ``(kh, kw, in, out)`` (TF's HWIO) and bias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...labels import NUM_CLASSES
from ..layer import (
    Layer,
    ParamSpec,
    ReferenceOp,
    as_image,
    float64_sum,
    hyper,
    image_shape,
    require_image,
)
from .windows import windows


@dataclass(frozen=True)
class Conv2D(Layer):
    """A square ``kernel`` with ``stride``; ``padding="same"`` pads as TensorFlow does (the
    extra row/column at the bottom/right), ``"valid"`` not at all."""

    kind: ClassVar[str] = "Conv2D"
    prefix: ClassVar[str] = "conv"
    capabilities: ClassVar[frozenset[str]] = frozenset({"convolution"})
    filters: int = hyper(32, minimum=1, help="output channels")
    kernel: int = hyper(3, minimum=1, help="kernel height and width")
    stride: int = hyper(1, minimum=1)
    padding: str = hyper("same", choices=("same", "valid"))

    def output_shape(self, shape):
        h, w, _ = require_image(shape)
        if self.padding == "same":
            return (-(-h // self.stride), -(-w // self.stride), self.filters)
        if self.kernel > min(h, w):
            raise ValueError(
                f"kernel {self.kernel} is larger than its input {h}×{w}"
                "|use a smaller kernel or padding='same'"
            )
        return (
            (h - self.kernel) // self.stride + 1,
            (w - self.kernel) // self.stride + 1,
            self.filters,
        )

    def params(self, shape):
        channels, k = image_shape(shape)[2], self.kernel
        return [
            ParamSpec(
                f"{self.name}.weight",
                (k, k, channels, self.filters),
                "glorot_uniform",
                fans=(k * k * channels, k * k * self.filters),
                layout="conv",
            ),
            ParamSpec(f"{self.name}.bias", (self.filters,), "zeros"),
        ]

    def same_padding(self, size: int) -> tuple[int, int]:
        """TensorFlow's ``same`` padding of one axis of ``size``: (before, after)."""
        total = max((-(-size // self.stride) - 1) * self.stride + self.kernel - size, 0)
        return total // 2, total - total // 2

    def pads(self, shape) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding for an input of ``shape``."""
        if self.padding != "same":
            return (0, 0, 0, 0)
        h, w, _ = image_shape(shape)
        return (*self.same_padding(h), *self.same_padding(w))

    def reference(self, shape, state):
        return _Conv2DReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        top, bottom, left, right = self.pads(shape)
        return graph.node(
            "Conv",
            [x, f"{self.name}.weight", f"{self.name}.bias"],
            kernel_shape=[self.kernel] * 2,
            strides=[self.stride] * 2,
            pads=[top, left, bottom, right],
        )

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        # stride 2 with 'same' pads unevenly (0 before, 1 after) on 28 pixels
        return [
            [
                Conv2D(4, 3, stride=2, padding="same"),
                ReLU(),
                Conv2D(6, 3, padding="valid"),
                Flatten(),
                Dense(NUM_CLASSES),
            ]
        ]


class _Conv2DReference(ReferenceOp):
    def forward(self, x, training):
        layer = self.layer
        x = as_image(x)
        self.in_shape = x.shape
        top, bottom, left, right = layer.pads(x.shape[1:])
        self.pads = (top, left)
        if top or bottom or left or right:
            x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
        self.padded_shape = x.shape
        cols = windows(x, layer.kernel, layer.stride)  # (N, Ho, Wo, C, k, k)
        n, ho, wo = cols.shape[:3]
        self.cols = np.ascontiguousarray(cols.transpose(0, 1, 2, 4, 5, 3)).reshape(n * ho * wo, -1)
        out = self.cols @ self.param("weight").reshape(-1, layer.filters) + self.param("bias")
        return out.reshape(n, ho, wo, layer.filters)

    def backward(self, dy):
        k, s = self.layer.kernel, self.layer.stride
        n, ho, wo, f = dy.shape
        flat = dy.reshape(-1, f)
        weight = self.param("weight")
        self.set_grad("weight", (self.cols.T @ flat).reshape(weight.shape))
        self.set_grad("bias", float64_sum(flat, 0))
        dcols = (flat @ weight.reshape(-1, f).T).reshape(n, ho, wo, k, k, -1)
        dx = np.zeros(self.padded_shape, np.float32)
        for i in range(k):
            for j in range(k):
                dx[:, i : i + s * ho : s, j : j + s * wo : s, :] += dcols[:, :, :, i, j, :]
        top, left = self.pads
        h, w = self.in_shape[1:3]
        return dx[:, top : top + h, left : left + w, :]
