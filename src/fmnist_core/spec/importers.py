"""``ModelSpec.from_torch`` and ``ModelSpec.from_keras``: a user's plain ``nn.Sequential`` or
``keras.Sequential`` as a spec, for the layer types fmnist knows. The modules are read by their
class names and attributes, so the core imports no framework. Values whose defaults differ
between frameworks (BatchNorm's momentum and epsilon, padding) are recorded in the spec, in
fmnist's (torch's) conventions, so every backend and every ejected program writes them out."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ReLU,
)


def _refuse(framework: str, layer: Any, why: str) -> None:
    raise ConfigError(
        f"ModelSpec.from_{framework}: cannot import {type(layer).__name__} ({why})",
        fix="use Flatten, Linear/Dense, ReLU, Conv2d/Conv2D, MaxPool2d, AvgPool2d, BatchNorm, "
        "Dropout, or write a ModelSpec by hand",
    )


def _pair(value: Any) -> int | None:
    """One int from an int or a square pair, else None."""
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2 and value[0] == value[1]:
        return int(value[0])
    return None


def _torch_padding(conv: Any) -> str | None:
    padding, kernel, stride = conv.padding, _pair(conv.kernel_size), _pair(conv.stride)
    if padding == "same":
        return "same"
    if padding == "valid" or _pair(padding) == 0:
        return "valid"
    # torch's symmetric padding equals TensorFlow's 'same' for stride 1 and an odd kernel
    if stride == 1 and kernel is not None and kernel % 2 == 1 and _pair(padding) == kernel // 2:
        return "same"
    return None


def from_torch(module: Any) -> list:
    """The layers of a plain ``nn.Sequential`` (input (N, 1, 28, 28) or (N, 28, 28))."""
    layers: list = []
    for child in module.children() if hasattr(module, "children") else module:
        kind = type(child).__name__
        if kind == "Flatten":
            layers.append(Flatten())
        elif kind == "Linear":
            if child.bias is None:
                _refuse("torch", child, "a Linear without bias")
            layers.append(Dense(int(child.out_features)))
        elif kind == "ReLU":
            layers.append(ReLU())
        elif kind == "Conv2d":
            padding, kernel, stride = (
                _torch_padding(child),
                _pair(child.kernel_size),
                _pair(child.stride),
            )
            if padding is None or kernel is None or stride is None or child.bias is None:
                _refuse("torch", child, "padding other than 0 or 'same', or no bias")
            if _pair(child.dilation) != 1 or child.groups != 1:
                _refuse("torch", child, "dilation or groups")
            layers.append(Conv2D(int(child.out_channels), kernel, stride=stride, padding=padding))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            pool, step = _pair(child.kernel_size), _pair(child.stride or child.kernel_size)
            if pool is None or step is None or _pair(child.padding) != 0:
                _refuse("torch", child, "padding, or a pool that is not square")
            layer = MaxPool2D if kind == "MaxPool2d" else AvgPool2D
            layers.append(layer(pool, stride=0 if step == pool else step))
        elif kind == "AdaptiveAvgPool2d" and _pair(child.output_size) == 1:
            layers.append(GlobalAvgPool())
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            if not child.affine or child.momentum is None:
                _refuse("torch", child, "no affine scale/shift, or a cumulative average")
            layers.append(BatchNorm(momentum=float(child.momentum), eps=float(child.eps)))
        elif kind == "Dropout":
            layers.append(Dropout(float(child.p)))
        else:
            _refuse("torch", child, "a layer type fmnist does not know")
    # GlobalAvgPool already flattens: torch needs a Flatten after AdaptiveAvgPool2d(1)
    return [
        layer
        for i, layer in enumerate(layers)
        if not (isinstance(layer, Flatten) and i and isinstance(layers[i - 1], GlobalAvgPool))
    ]


def from_keras(model: Any) -> list:
    """The layers of a plain ``keras.Sequential`` (input (28, 28) or (28, 28, 1))."""
    layers: list = []

    def activation(layer: Any) -> None:
        name = getattr(getattr(layer, "activation", None), "__name__", "linear")
        if name == "relu":
            layers.append(ReLU())
        elif name != "linear":
            _refuse("keras", layer, f"activation {name!r}")

    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Reshape"):
            continue
        if kind == "Flatten":
            layers.append(Flatten())
        elif kind == "Dense":
            if not layer.use_bias:
                _refuse("keras", layer, "a Dense without bias")
            layers.append(Dense(int(layer.units)))
            activation(layer)
        elif kind == "ReLU":
            layers.append(ReLU())
        elif kind == "Activation":
            activation(layer)
        elif kind == "Conv2D":
            kernel, stride = _pair(tuple(layer.kernel_size)), _pair(tuple(layer.strides))
            if kernel is None or stride is None or not layer.use_bias:
                _refuse("keras", layer, "a kernel or stride that is not square, or no bias")
            if _pair(tuple(layer.dilation_rate)) != 1 or layer.groups != 1:
                _refuse("keras", layer, "dilation or groups")
            layers.append(Conv2D(int(layer.filters), kernel, stride=stride, padding=layer.padding))
            activation(layer)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            pool, step = _pair(tuple(layer.pool_size)), _pair(tuple(layer.strides))
            if pool is None or step is None or layer.padding != "valid":
                _refuse("keras", layer, "'same' padding, or a pool that is not square")
            kind_ = MaxPool2D if kind == "MaxPooling2D" else AvgPool2D
            layers.append(kind_(pool, stride=0 if step == pool else step))
        elif kind == "GlobalAveragePooling2D":
            layers.append(GlobalAvgPool())
        elif kind == "BatchNormalization":
            if not (layer.center and layer.scale):
                _refuse("keras", layer, "no scale or shift")
            # Keras' momentum is the share of the old statistics; fmnist's that of the batch
            layers.append(BatchNorm(momentum=round(1 - float(layer.momentum), 12),
                                    eps=float(layer.epsilon)))  # fmt: skip
        elif kind == "Dropout":
            layers.append(Dropout(float(layer.rate)))
        else:
            _refuse("keras", layer, "a layer type fmnist does not know")
    return layers
