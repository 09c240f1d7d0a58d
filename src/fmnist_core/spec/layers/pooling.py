"""Pooling: ``MaxPool2D`` and ``AvgPool2D`` over square windows, ``GlobalAvgPool`` over the whole
image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...labels import NUM_CLASSES
from ..layer import Layer, ReferenceOp, as_image, hyper, require_image
from .windows import windows


@dataclass(frozen=True)
class WindowPool(Layer):
    """What window pooling shares: a ``pool``×``pool`` window moving by ``stride`` (0: the pool
    size), without padding. Not a layer type itself."""

    pool: int = hyper(2, minimum=1)
    stride: int = hyper(0, minimum=0, help="0: the pool size")

    @property
    def step(self) -> int:
        return self.stride or self.pool

    def output_shape(self, shape):
        h, w, c = require_image(shape)
        if self.pool > min(h, w):
            raise ValueError(
                f"pool {self.pool} is larger than its input {h}×{w}|use a smaller pool"
            )
        return ((h - self.pool) // self.step + 1, (w - self.pool) // self.step + 1, c)


@dataclass(frozen=True)
class MaxPool2D(WindowPool):
    """The maximum of each window."""

    kind: ClassVar[str] = "MaxPool2D"

    def reference(self, shape, state):
        return _MaxPoolReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        return graph.node("MaxPool", [x], kernel_shape=[self.pool] * 2, strides=[self.step] * 2)

    @classmethod
    def examples(cls):
        Conv2D = Layer.of_kind("Conv2D")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        return [[Conv2D(4, 3), MaxPool2D(3, stride=2), MaxPool2D(2), Flatten(), Dense(NUM_CLASSES)]]


class _MaxPoolReference(ReferenceOp):
    def forward(self, x, training):
        x = as_image(x)
        self.in_shape = x.shape
        p, s = self.layer.pool, self.layer.step
        cols = windows(x, p, s)
        flat = cols.reshape(*cols.shape[:4], p * p)
        self.arg = flat.argmax(axis=-1)
        return np.take_along_axis(flat, self.arg[..., None], axis=-1)[..., 0]

    def backward(self, dy):
        p, s = self.layer.pool, self.layer.step
        _, ho, wo, _ = dy.shape
        dx = np.zeros(self.in_shape, np.float32)
        for i in range(p):
            for j in range(p):
                dx[:, i : i + s * ho : s, j : j + s * wo : s, :] += dy * (self.arg == i * p + j)
        return dx


@dataclass(frozen=True)
class AvgPool2D(WindowPool):
    """The mean of each window."""

    kind: ClassVar[str] = "AvgPool2D"

    def reference(self, shape, state):
        return _AvgPoolReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        return graph.node("AveragePool", [x], kernel_shape=[self.pool] * 2, strides=[self.step] * 2)

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        Conv2D = Layer.of_kind("Conv2D")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        return [
            [
                Conv2D(4, 3),
                AvgPool2D(2),
                ReLU(),
                AvgPool2D(3, stride=2),
                Flatten(),
                Dense(NUM_CLASSES),
            ]
        ]


class _AvgPoolReference(ReferenceOp):
    def forward(self, x, training):
        x = as_image(x)
        self.in_shape = x.shape
        return windows(x, self.layer.pool, self.layer.step).mean(axis=(-2, -1), dtype=np.float32)

    def backward(self, dy):
        p, s = self.layer.pool, self.layer.step
        _, ho, wo, _ = dy.shape
        share = dy / np.float32(p * p)
        dx = np.zeros(self.in_shape, np.float32)
        for i in range(p):
            for j in range(p):
                dx[:, i : i + s * ho : s, j : j + s * wo : s, :] += share
        return dx


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """The mean of each channel over the whole image: ``(H, W, C)`` → ``(C,)``."""

    kind: ClassVar[str] = "GlobalAvgPool"

    def output_shape(self, shape):
        return (require_image(shape)[2],)

    def reference(self, shape, state):
        return _GlobalAvgPoolReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        return graph.node("Flatten", [graph.node("GlobalAveragePool", [x])], axis=1)

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        Conv2D = Layer.of_kind("Conv2D")
        Dense = Layer.of_kind("Dense")

        return [[Conv2D(6, 3, stride=2), ReLU(), GlobalAvgPool(), Dense(NUM_CLASSES)]]


class _GlobalAvgPoolReference(ReferenceOp):
    def forward(self, x, training):
        x = as_image(x)
        self.in_shape = x.shape
        return x.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)

    def backward(self, dy):
        _, h, w, _ = self.in_shape
        return np.broadcast_to((dy / np.float32(h * w))[:, None, None, :], self.in_shape).astype(
            np.float32
        )
