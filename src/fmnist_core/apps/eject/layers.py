"""Helpers the three program writers share while walking a spec's layers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigError
from ...spec.layer import image_shape

SUPPORTED = (
    "Flatten",
    "Dense",
    "ReLU",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool",
    "BatchNorm",
    "Dropout",
    "Residual",
)


@dataclass
class Emitted:
    """The lines a network's constructor and forward pass get, and the helpers it needs."""

    inits: list[str] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    needs: set[str] = field(default_factory=set)
    depth: int = 0

    def init(self, line: str) -> None:
        self.inits.append(line)

    def forward(self, line: str) -> None:
        self.forwards.append(line)


def channels(shape) -> int:
    return image_shape(shape)[2] if len(shape) >= 2 else shape[0]


def local(layer) -> str:
    """The layer's own name within its block (``res1.conv1`` → ``conv1``)."""
    return layer.name.rsplit(".", 1)[-1] if layer.name else layer.kind.lower()


def unknown(layer, framework: str):
    raise ConfigError(
        f"fmnist eject cannot write layer type {layer.kind!r} in {framework} (it writes "
        f"{', '.join(SUPPORTED)})",
        fix="eject a model made of those, or train it with fmnist's backends",
    )


def check_supported(spec) -> None:
    for layer in spec.walk():
        if layer.kind not in SUPPORTED:
            unknown(layer, "any framework")
