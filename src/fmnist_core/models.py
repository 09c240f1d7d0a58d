"""Architectures as data: a ``ModelSpec`` is a sequential stack of layers that every backend builds.

The vocabulary: ``Flatten``, ``Dense``, ``Conv2D``, ``MaxPool2D``, ``ReLU``, ``BatchNorm``,
``Dropout``, ``GlobalAvgPool``. Shapes are inferred from the dataset's image shape; the last
layer must give one logit per class.

The neutral layout, what safetensors files hold and what every backend reads and writes
(float32, channels-last):

* activations are ``(N, H, W, C)``; the dataset's ``(N, 28, 28)`` images are ``C = 1``; a
  ``Flatten`` of ``(H, W, C)`` reads in that order (TF/Keras order; torch permutes first);
* ``Dense``: ``{name}.weight (in, out)``, ``{name}.bias (out,)`` (torch's ``Linear.weight`` is the
  transpose);
* ``Conv2D``: ``{name}.weight (kh, kw, in, out)`` (TF's HWIO; torch's is ``(out, in, kh, kw)``),
  ``{name}.bias (out,)``; padding ``same`` pads as TensorFlow does (the extra row/column at the
  bottom/right);
* ``BatchNorm``: ``{name}.weight`` (scale), ``{name}.bias`` (shift), and the buffers
  ``{name}.running_mean``/``{name}.running_var``; in training the batch's mean and biased variance
  normalise, and ``running = (1 - momentum) · running + momentum · batch`` (momentum 0.1 as in
  torch, 0.9 in Keras' convention), with the *biased* variance (as Keras does);
* names are ``fc1, fc2, …`` for Dense, ``conv1, …`` for Conv2D, ``bn1, …`` for BatchNorm, unless a
  layer is given a ``name``.

``Dropout`` is inverted dropout (kept values scaled by ``1 / (1 - rate)``) in training and the
identity in inference; each backend draws its masks from its own seeded generator, so runs with
dropout are reproducible per backend but not bit-identical across backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .dataset_files import IMAGE_SHAPE
from .errors import ConfigError
from .labels import NUM_CLASSES

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ParamSpec:
    """One tensor: neutral name, shape, initialiser (``glorot_uniform``, ``zeros``, ``ones``) and
    whether the optimizer trains it (``False`` for buffers such as BatchNorm's running statistics)."""

    name: str
    shape: tuple[int, ...]
    init: str = "zeros"
    trainable: bool = True
    fans: tuple[int, int] | None = None  # (fan_in, fan_out) for glorot_uniform


@dataclass(frozen=True)
class Layer:
    """A layer of the vocabulary. ``name`` is the prefix of its parameters (given or numbered)."""

    kind: ClassVar[str] = ""
    prefix: ClassVar[str] = ""  # numbering prefix of layers with parameters
    name: str = field(default="", kw_only=True)

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def params(self, shape: Shape) -> list[ParamSpec]:
        """The parameters (and buffers) for input ``shape``, in the order Keras keeps them."""
        return []

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)
                                     if getattr(self, f.name) != f.default}}


def _image(shape: Shape) -> Shape:
    """``(H, W)`` images count as ``(H, W, 1)``."""
    return (*shape, 1) if len(shape) == 2 else shape


@dataclass(frozen=True)
class Flatten(Layer):
    kind: ClassVar[str] = "Flatten"

    def output_shape(self, shape):
        return (math.prod(shape),)


@dataclass(frozen=True)
class Dense(Layer):
    kind: ClassVar[str] = "Dense"
    prefix: ClassVar[str] = "fc"
    units: int = NUM_CLASSES

    def output_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(f"needs a flat input, got shape {shape}|add Flatten or GlobalAvgPool before it")
        return (self.units,)

    def params(self, shape):
        return [ParamSpec(f"{self.name}.weight", (shape[0], self.units), "glorot_uniform", fans=(shape[0], self.units)),
                ParamSpec(f"{self.name}.bias", (self.units,), "zeros")]


@dataclass(frozen=True)
class Conv2D(Layer):
    kind: ClassVar[str] = "Conv2D"
    prefix: ClassVar[str] = "conv"
    filters: int = 32
    kernel: int = 3
    stride: int = 1
    padding: str = "same"

    def output_shape(self, shape):
        if len(shape) not in (2, 3):
            raise ValueError(f"needs an image (H, W, C), got shape {shape}|put it before Flatten")
        h, w, _ = _image(shape)
        if self.padding == "same":
            return (-(-h // self.stride), -(-w // self.stride), self.filters)
        if self.kernel > min(h, w):
            raise ValueError(f"kernel {self.kernel} is larger than its input {h}×{w}|use a smaller kernel or padding='same'")
        return ((h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1, self.filters)

    def params(self, shape):
        channels = _image(shape)[2]
        k = self.kernel
        return [ParamSpec(f"{self.name}.weight", (k, k, channels, self.filters), "glorot_uniform",
                          fans=(k * k * channels, k * k * self.filters)),
                ParamSpec(f"{self.name}.bias", (self.filters,), "zeros")]

    def same_padding(self, size: int) -> tuple[int, int]:
        """TensorFlow's ``same`` padding of one axis: (before, after)."""
        total = max((-(-size // self.stride) - 1) * self.stride + self.kernel - size, 0)
        return total // 2, total - total // 2


@dataclass(frozen=True)
class MaxPool2D(Layer):
    kind: ClassVar[str] = "MaxPool2D"
    pool: int = 2
    stride: int = 0  # 0: the pool size

    @property
    def step(self) -> int:
        return self.stride or self.pool

    def output_shape(self, shape):
        if len(shape) not in (2, 3):
            raise ValueError(f"needs an image (H, W, C), got shape {shape}|put it before Flatten")
        h, w, c = _image(shape)
        if self.pool > min(h, w):
            raise ValueError(f"pool {self.pool} is larger than its input {h}×{w}|use a smaller pool")
        return ((h - self.pool) // self.step + 1, (w - self.pool) // self.step + 1, c)


@dataclass(frozen=True)
class ReLU(Layer):
    kind: ClassVar[str] = "ReLU"


@dataclass(frozen=True)
class BatchNorm(Layer):
    kind: ClassVar[str] = "BatchNorm"
    prefix: ClassVar[str] = "bn"
    momentum: float = 0.1
    eps: float = 1e-5

    def params(self, shape):
        c = _image(shape)[-1] if len(shape) >= 2 else shape[0]
        return [ParamSpec(f"{self.name}.weight", (c,), "ones"), ParamSpec(f"{self.name}.bias", (c,), "zeros"),
                ParamSpec(f"{self.name}.running_mean", (c,), "zeros", trainable=False),
                ParamSpec(f"{self.name}.running_var", (c,), "ones", trainable=False)]


@dataclass(frozen=True)
class Dropout(Layer):
    kind: ClassVar[str] = "Dropout"
    rate: float = 0.5


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    kind: ClassVar[str] = "GlobalAvgPool"

    def output_shape(self, shape):
        if len(shape) not in (2, 3):
            raise ValueError(f"needs an image (H, W, C), got shape {shape}|put it before Flatten")
        return (_image(shape)[2],)


LAYER_TYPES: dict[str, type[Layer]] = {t.kind: t for t in
                                        (Flatten, Dense, Conv2D, MaxPool2D, ReLU, BatchNorm, Dropout, GlobalAvgPool)}


@dataclass(frozen=True)
class Recipe:
    """A model's training hyper-parameters, used unless the user overrides them."""

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 0.1
    optimizer: Any = "sgd"  # a name or an ``fmnist_core.optimizers.Optimizer``
    schedule: Any = "constant"  # a name or an ``fmnist_core.schedules.Schedule``


ARTICLE_RECIPE = Recipe()


class ModelSpec:
    """A named architecture: a sequential stack of layers, validated and shaped from the input.

    ``ModelSpec("mine", [Conv2D(16, 3), ReLU(), GlobalAvgPool(), Dense(10)])`` trains on every
    backend. Raises ``ConfigError`` naming the layer when the stack cannot work.
    """

    def __init__(self, name: str, layers: list[Layer] | tuple[Layer, ...], description: str = "",
                 recipe: Recipe | None = None, input_shape: Shape = IMAGE_SHAPE, num_classes: int = NUM_CLASSES):
        self.name, self.description = name, description
        self.recipe = recipe or ARTICLE_RECIPE
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.layers = self._named(list(layers))
        self.shapes_between = self._infer_shapes()
        self.params = tuple(p for layer, shape in zip(self.layers, self.shapes_between, strict=False)
                            for p in layer.params(shape))

    def _named(self, layers: list[Layer]) -> tuple[Layer, ...]:
        if not layers:
            raise ConfigError(f"model {self.name!r} has no layers", fix="give at least one Dense layer")
        counts: dict[str, int] = {}
        named = []
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"model {self.name!r}: layer {index + 1} is {layer!r}, not a layer",
                                  fix=f"use one of {', '.join(LAYER_TYPES)}")
            _check_layer_values(self.name, index, layer)
            if layer.prefix:
                counts[layer.prefix] = counts.get(layer.prefix, 0) + 1
                if not layer.name:
                    layer = type(layer)(**{**_values(layer), "name": f"{layer.prefix}{counts[layer.prefix]}"})
            named.append(layer)
        names = [layer.name for layer in named if layer.prefix]
        if len(set(names)) != len(names):
            raise ConfigError(f"model {self.name!r} has two layers named alike ({', '.join(names)})",
                              fix="give each layer its own name")
        return tuple(named)

    def _infer_shapes(self) -> list[Shape]:
        shapes = [self.input_shape]
        for index, layer in enumerate(self.layers):
            try:
                shapes.append(layer.output_shape(shapes[-1]))
            except ValueError as exc:
                message, _, fix = str(exc).partition("|")
                raise ConfigError(f"model {self.name!r}, layer {index + 1} ({layer.kind} {layer.name}): {message}",
                                  fix=fix or "change the layer") from None
            if any(size < 1 for size in shapes[-1]):
                raise ConfigError(f"model {self.name!r}, layer {index + 1} ({layer.kind}) leaves nothing: shape {shapes[-1]}",
                                  fix="use fewer pooling or strided layers")
        if shapes[-1] != (self.num_classes,):
            raise ConfigError(f"model {self.name!r} ends in shape {shapes[-1]}, not one logit per class ({self.num_classes},)",
                              fix=f"end with Dense({self.num_classes})")
        return shapes

    # -- what backends and files need ---------------------------------------------------
    @property
    def output_shapes(self) -> list[Shape]:
        return self.shapes_between[1:]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter and buffer by neutral name."""
        return {p.name: p.shape for p in self.params}

    def trainable(self) -> list[str]:
        """Names of the parameters the optimizer updates, in order."""
        return [p.name for p in self.params if p.trainable]

    def count_params(self) -> int:
        """Number of trainable values."""
        return sum(math.prod(p.shape) for p in self.params if p.trainable)

    def has(self, kind: str) -> bool:
        return any(layer.kind == kind for layer in self.layers)

    def is_mlp(self) -> bool:
        """Flatten, Dense, ReLU, Dense: the article's shape (fast paths apply)."""
        return [layer.kind for layer in self.layers] == ["Flatten", "Dense", "ReLU", "Dense"]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The inverse of ``to_dict`` (weight files record the architecture this way)."""
        if not isinstance(data, dict) or not isinstance(data.get("layers", []), list):
            raise ConfigError(f"a recorded architecture must be {{'name': …, 'layers': [...]}}, got {str(data)[:80]}",
                              fix="save the weights again with fmnist")
        layers = []
        for index, item in enumerate(data.get("layers", [])):
            if not isinstance(item, dict):
                raise ConfigError(f"model {data.get('name')!r}, layer {index + 1}: {item!r} is not a layer description",
                                  fix="save the weights again with fmnist")
            item = dict(item)
            kind = item.pop("type", None)
            if kind not in LAYER_TYPES:
                raise ConfigError(f"model {data.get('name')!r}, layer {index + 1}: unknown layer type {kind!r}",
                                  fix=f"use one of {', '.join(LAYER_TYPES)}")
            try:
                layers.append(LAYER_TYPES[kind](**item))
            except TypeError as exc:
                raise ConfigError(f"model {data.get('name')!r}, layer {index + 1} ({kind}): {exc}",
                                  fix="check the layer's arguments") from None
        return cls(data.get("name", "custom"), layers)

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """Initial parameters and buffers from ``seed``, identical on every backend and machine."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x466D6E]))
        params = {}
        for spec in self.params:
            if spec.init == "glorot_uniform":
                fan_in, fan_out = spec.fans or (spec.shape[0], spec.shape[-1])
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                params[spec.name] = rng.uniform(-limit, limit, spec.shape).astype(np.float32)
            elif spec.init in ("zeros", "ones"):
                params[spec.name] = np.full(spec.shape, 1.0 if spec.init == "ones" else 0.0, dtype=np.float32)
            else:
                raise ValueError(f"unknown initialiser {spec.init!r} for {spec.name}")
        return params

    def check_params(self, params: dict[str, np.ndarray], source: str = "weights") -> dict[str, np.ndarray]:
        """Validate names and shapes; return float32 contiguous copies. Raises WeightsError."""
        from .errors import WeightsError

        expected = self.shapes()
        missing = [name for name in expected if name not in params]
        extra = sorted(set(params) - set(expected))
        if missing or extra:
            raise WeightsError(
                f"{source} do not fit model {self.name!r}: "
                + (f"missing {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {', '.join(extra)}" if extra else ""),
                fix=f"load weights saved for {self.name!r}, or pass the model they were made for",
            )
        checked = {}
        for name, shape in expected.items():
            array = np.asarray(params[name])
            if tuple(array.shape) != shape:
                raise WeightsError(
                    f"{source}: {name} has shape {tuple(array.shape)}, model {self.name!r} "
                    f"expects {shape}",
                    fix="load weights of the same architecture",
                )
            checked[name] = np.ascontiguousarray(array, dtype=np.float32)
        return checked

    def summary(self) -> str:
        """One line per layer: kind, output shape, parameter count."""
        lines = []
        for index, layer in enumerate(self.layers):
            shape = self.shapes_between[index + 1]
            count = sum(math.prod(p.shape) for p in layer.params(self.shapes_between[index]) if p.trainable)
            lines.append(f"{layer.kind:<14}{layer.name:<8}{str(shape):<16}{count}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ModelSpec({self.name!r}, {self.count_params()} parameters, {len(self.layers)} layers)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.name)


def _values(layer: Layer) -> dict[str, Any]:
    return {f.name: getattr(layer, f.name) for f in fields(layer)}


def _check_layer_values(model: str, index: int, layer: Layer) -> None:
    def bad(what: str, fix: str) -> ConfigError:
        return ConfigError(f"model {model!r}, layer {index + 1} ({layer.kind}): {what}", fix=fix)

    for name in ("units", "filters", "kernel", "pool"):
        value = getattr(layer, name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(f"{name} must be an integer ≥ 1, got {value!r}", f"pass {name}=1 or more")
    stride = getattr(layer, "stride", 1)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < (0 if isinstance(layer, MaxPool2D) else 1):
        raise bad(f"stride must be an integer ≥ 1, got {stride!r}", "pass stride=1 or more")
    if getattr(layer, "padding", "same") not in ("same", "valid"):
        raise bad(f"padding must be 'same' or 'valid', got {layer.padding!r}", "use padding='same' or 'valid'")
    rate = getattr(layer, "rate", 0.0)
    if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise bad(f"rate must be in [0, 1), got {rate!r}", "use e.g. rate=0.25")
    if isinstance(layer, BatchNorm) and not (0 < layer.momentum <= 1 and layer.eps > 0):
        raise bad(f"momentum must be in (0, 1] and eps > 0, got {layer.momentum}, {layer.eps}",
                  "use the defaults momentum=0.1, eps=1e-5")


MLP = ModelSpec(
    "mlp",
    [Flatten(), Dense(20), ReLU(), Dense(NUM_CLASSES)],
    description="the article's 784-20-10 perceptron: Flatten, Dense(20), ReLU, Dense(10)",
    recipe=ARTICLE_RECIPE,
)

CNN = ModelSpec(
    "cnn",
    [Conv2D(16, 3), MaxPool2D(2), BatchNorm(), ReLU(),
     Conv2D(32, 3), MaxPool2D(2), BatchNorm(), ReLU(),
     Flatten(), Dense(NUM_CLASSES)],
    # pooling before BatchNorm and ReLU: those run on a quarter of the values; measured on 2 cores
    # (torch, channels-last) 14 s per epoch against 20 s for conv-BN-ReLU-pool, same accuracy
    description="two conv-pool-BatchNorm-ReLU blocks (16, 32 filters) and a linear classifier",
    recipe=Recipe(epochs=4, batch_size=128, learning_rate=0.01, optimizer="adam", schedule="onecycle"),
)
