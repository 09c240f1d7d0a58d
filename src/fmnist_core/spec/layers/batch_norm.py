"""``BatchNorm``: normalise each channel by the batch's statistics in training, by running
averages in inference; a learnt scale and shift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...labels import NUM_CLASSES
from ..layer import Layer, ParamSpec, ReferenceOp, float64_sum, hyper, image_shape


@dataclass(frozen=True)
class BatchNorm(Layer):
    """``{name}.weight`` (scale), ``{name}.bias`` (shift) and the buffers
    ``{name}.running_mean``/``{name}.running_var``. In training the batch's mean and *biased*
    variance normalise (statistics accumulated in float64), and ``running = (1 - momentum) ·
    running + momentum · batch`` (torch's convention for ``momentum``; Keras' is ``1 - momentum``).
    Over the channel axis of images, or the features of flat inputs."""

    kind: ClassVar[str] = "BatchNorm"
    prefix: ClassVar[str] = "bn"
    momentum: float = hyper(
        0.1, above=0.0, maximum=1.0, help="share of the batch in the running averages"
    )
    eps: float = hyper(1e-5, above=0.0)

    def params(self, shape):
        c = image_shape(shape)[-1] if len(shape) >= 2 else shape[0]
        return [
            ParamSpec(f"{self.name}.weight", (c,), "ones"),
            ParamSpec(f"{self.name}.bias", (c,), "zeros"),
            ParamSpec(f"{self.name}.running_mean", (c,), "zeros", trainable=False),
            ParamSpec(f"{self.name}.running_var", (c,), "ones", trainable=False),
        ]

    def reference(self, shape, state):
        return _BatchNormReference(self, shape, state)

    def to_onnx(self, graph, x, shape):
        names = [f"{self.name}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
        if len(shape) >= 2:
            return graph.node("BatchNormalization", [x, *names], epsilon=self.eps)
        # (n, c): BatchNormalization wants a channel axis 1 with spatial axes after it
        axes = graph.const([2], "int64")
        widened = graph.node("Unsqueeze", [x, axes])
        return graph.node(
            "Squeeze", [graph.node("BatchNormalization", [widened, *names], epsilon=self.eps), axes]
        )

    @classmethod
    def examples(cls):
        ReLU = Layer.of_kind("ReLU")
        Conv2D = Layer.of_kind("Conv2D")
        Dense = Layer.of_kind("Dense")
        Flatten = Layer.of_kind("Flatten")

        return [
            [Conv2D(4, 3, stride=2), BatchNorm(), ReLU(), Flatten(), Dense(NUM_CLASSES)],
            [Flatten(), Dense(24), BatchNorm(momentum=0.2), ReLU(), Dense(NUM_CLASSES)],
        ]


class _BatchNormReference(ReferenceOp):
    def forward(self, x, training):
        layer = self.layer
        axes = tuple(range(x.ndim - 1))
        gamma, beta = self.param("weight"), self.param("bias")
        if not training:
            std = np.sqrt(self.param("running_var") + np.float32(layer.eps))
            return (x - self.param("running_mean")) / std * gamma + beta
        # statistics over N·H·W values accumulate in float64: NumPy sums other than along the last
        # axis are sequential, and float32 would drift by ~1e-5 over 100,000 values
        mean = x.mean(axis=axes, dtype=np.float64).astype(np.float32)
        var = ((x - mean) ** 2).mean(axis=axes, dtype=np.float64).astype(np.float32)
        self.inv_std = np.float32(1.0) / np.sqrt(var + np.float32(layer.eps))
        self.xhat = (x - mean) * self.inv_std
        self.axes, self.count = axes, x.size // x.shape[-1]
        m = np.float32(layer.momentum)
        running_mean, running_var = self.param("running_mean"), self.param("running_var")
        running_mean[...] = (1 - m) * running_mean + m * mean
        running_var[...] = (1 - m) * running_var + m * var
        return self.xhat * gamma + beta

    def backward(self, dy):
        gamma = self.param("weight")
        self.set_grad("weight", float64_sum(dy * self.xhat, self.axes))
        self.set_grad("bias", float64_sum(dy, self.axes))
        dxhat = dy * gamma
        n = np.float32(self.count)
        return (self.inv_std / n) * (
            n * dxhat
            - float64_sum(dxhat, self.axes)
            - self.xhat * float64_sum(dxhat * self.xhat, self.axes)
        )
