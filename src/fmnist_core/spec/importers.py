"""``ModelSpec.from_torch`` and ``ModelSpec.from_keras``: a user's plain ``nn.Sequential`` or
``keras.Sequential`` as a spec, for the layer types fmnist knows. The modules are read by their
class names and attributes, so the core imports no framework. Values whose defaults differ
between frameworks (BatchNorm's momentum and epsilon, padding) are recorded in the spec, in
fmnist's (torch's) conventions, so every backend and every ejected program writes them out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from ..errors import ConfigError
from .layer import Layer
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


def check_declared(spec: Any, declared: dict[int, tuple[str, str, int]]) -> None:
    """Refuse a torch module whose declared input size is not what reaches it in the spec (a
    ``Linear(100, 10)`` after 784 features would compute something else, or nothing)."""
    for index, (kind, name, size) in declared.items():
        shape = spec.shapes_between[index]
        reaching = shape[-1] if len(shape) in (1, 3) else 1
        if reaching != size:
            raise ConfigError(
                f"ModelSpec.from_torch: layer {index + 1} ({kind}) declares {name}={size}, but "
                f"{reaching} reach it",
                fix=f"make it {kind}({reaching}, ...)",
            )


def _refuse(framework: str, layer: Any, why: str) -> NoReturn:
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


def _plain(framework: str, obj: Any, package: str, what: str) -> None:
    """Refuse ``obj`` unless it is ``package``'s own class (a subclass may compute something
    else: its ``forward`` or ``call`` is not read)."""
    if not type(obj).__module__.startswith(package):
        _refuse(framework, obj, f"a {what} of class {type(obj).__module__}.{type(obj).__name__}, "
                "not the framework's own: fmnist reads layers, not code")  # fmt: skip


def _children(framework: str, model: Any, package: str) -> Iterator[Any]:
    """The layers of a plain Sequential, at most ``MAX_LAYERS`` of them."""
    from .building import MAX_LAYERS

    if model is None or type(model).__name__ != "Sequential":
        raise ConfigError(
            f"ModelSpec.from_{framework} takes a plain Sequential, got "
            f"{type(model).__name__ if model is not None else 'None'}",
            fix=f"pass a {framework} Sequential of the layers fmnist knows",
        )
    _plain(framework, model, package, "model")
    found = model.children() if framework == "torch" else iter(model.layers)
    for count, child in enumerate(found):
        if count >= MAX_LAYERS:
            raise ConfigError(
                f"ModelSpec.from_{framework}: more than {MAX_LAYERS} layers",
                fix="use fewer layers",
            )
        _plain(framework, child, package, "layer")
        yield child


def _attribute(framework: str, layer: Any, name: str, wanted: Any) -> None:
    """Refuse ``layer`` whose attribute ``name`` is not ``wanted`` (what fmnist computes)."""
    value = getattr(layer, name, wanted)
    if isinstance(value, (list, tuple)) and isinstance(wanted, int) and wanted is not False:
        value = _pair(value)
    if value != wanted:
        _refuse(framework, layer, f"{name}={value!r}, which fmnist does not compute")


def from_torch(module: Any) -> tuple[list, dict[int, tuple[str, str, int]]]:
    """The layers of a plain ``nn.Sequential`` (input (N, 1, 28, 28) or (N, 28, 28)), and each
    layer's declared input size (``in_features``, ``in_channels``, ``num_features``) by layer
    index, for ``check_declared`` once the spec has its shapes."""
    layers: list = []
    declared: dict[int, tuple[str, str, int]] = {}
    for child in _children("torch", module, "torch.nn"):
        kind = type(child).__name__
        for name in ("in_features", "in_channels", "num_features"):
            if hasattr(child, name):
                declared[len(layers)] = (kind, name, int(getattr(child, name)))
        if kind == "Flatten":
            _attribute("torch", child, "start_dim", 1)
            _attribute("torch", child, "end_dim", -1)
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
            if padding != "valid":
                _attribute("torch", child, "padding_mode", "zeros")
            layers.append(Conv2D(int(child.out_channels), kernel, stride=stride, padding=padding))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            pool, step = _pair(child.kernel_size), _pair(child.stride or child.kernel_size)
            if pool is None or step is None or _pair(child.padding) != 0:
                _refuse("torch", child, "padding, or a pool that is not square")
            _attribute("torch", child, "ceil_mode", False)
            _attribute("torch", child, "dilation", 1)
            _attribute("torch", child, "return_indices", False)
            _attribute("torch", child, "divisor_override", None)
            layer = MaxPool2D if kind == "MaxPool2d" else AvgPool2D
            layers.append(layer(pool, stride=0 if step == pool else step))
        elif kind == "AdaptiveAvgPool2d" and _pair(child.output_size) == 1:
            layers.append(GlobalAvgPool())
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            if not child.affine or child.momentum is None:
                _refuse("torch", child, "no affine scale/shift, or a cumulative average")
            _attribute("torch", child, "track_running_stats", True)
            layers.append(BatchNorm(momentum=float(child.momentum), eps=float(child.eps)))
        elif kind == "Dropout":
            layers.append(Dropout(float(child.p)))
        else:
            _refuse("torch", child, "a layer type fmnist does not know")
    # GlobalAvgPool already flattens: torch needs a Flatten after AdaptiveAvgPool2d(1)
    kept: list[Layer] = []
    indices: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, Flatten) and i and isinstance(layers[i - 1], GlobalAvgPool):
            continue
        indices[i] = len(kept)
        kept.append(layer)
    return kept, {indices[i]: value for i, value in declared.items() if i in indices}


def from_keras(model: Any) -> list:
    """The layers of a plain ``keras.Sequential`` (input (28, 28) or (28, 28, 1))."""
    layers: list = []

    def activation(layer: Any) -> None:
        name = getattr(getattr(layer, "activation", None), "__name__", "linear")
        if name == "relu":
            layers.append(ReLU())
        elif name != "linear":
            _refuse("keras", layer, f"activation {name!r}")

    for layer in _children("keras", model, "keras"):
        kind = type(layer).__name__
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            _refuse("keras", layer, "channels-first data; fmnist's images are channels-last")
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
            for name, plain in (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0)):
                _attribute("keras", layer, name, plain)
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
            if getattr(layer, "axis", -1) not in (-1, 3, [-1], [3]):
                _refuse("keras", layer, f"axis={layer.axis!r}: fmnist normalises channels")
            # Keras' momentum is the share of the old statistics; fmnist's that of the batch
            layers.append(BatchNorm(momentum=round(1 - float(layer.momentum), 12),
                                    eps=float(layer.epsilon)))  # fmt: skip
        elif kind == "Dropout":
            _attribute("keras", layer, "noise_shape", None)
            layers.append(Dropout(float(layer.rate)))
        else:
            _refuse("keras", layer, "a layer type fmnist does not know")
    return layers
