"""Architectures as data: a ``ModelSpec`` is a stack of layers that every backend builds.

The layer types are registered by plugins (``fmnist layers`` lists them; the built-ins are in
``fmnist_core.spec.layers``). Shapes are inferred from the dataset's image shape; the last layer
must give one logit per class.

The neutral layout, what safetensors files hold and what every backend reads and writes
(float32, channels-last):

* activations are ``(N, H, W, C)``; the dataset's ``(N, 28, 28)`` images are ``C = 1``; a
  ``Flatten`` of ``(H, W, C)`` reads in that order (TF/Keras order; torch permutes first);
* each tensor has a layout declared by the layer that owns it (``ParamSpec.layout``):
  ``dense`` ``(in, out)``, ``conv`` ``(kh, kw, in, out)``, ``vector``; see each layer's docstring;
* names are ``fc1, fc2, …`` for Dense, ``conv1, …`` for Conv2D, ``bn1, …`` for BatchNorm,
  ``res1, …`` for Residual (whose layers are named inside it: ``res1.conv1.weight``), unless a
  layer is given a ``name``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..data.spec import IMAGE_SHAPE
from ..errors import ConfigError, WeightsError
from ..labels import NUM_CLASSES
from .building import (
    _activation_values,
    _layers_from,
    _named,
    _output_shape,
)
from .layer import Layer, ParamSpec, Shape, check_name

SMALL_MODEL_MACS = 200_000
"""Below this many multiply-adds per sample (``ModelSpec.forward_macs``), CPU backends train on
one thread: a small model's steps gain nothing measurable from two, and fall off a cliff when
another process is busy on the cores (BENCHMARKS.md, "Beside a busy process")."""


class Recipe:
    """A model's training settings, used unless the user gives them: a partial
    ``fmnist_core.TrainConfig``. ``Recipe(epochs=4, optimizer="adam")`` names any of its recipe
    settings (``TrainConfig``'s declarations say which, their checks and their defaults: a
    setting the recipe leaves out is the article's); they are checked, as the user's are, when a
    run resolves them (``TrainConfig.resolve``)."""

    __slots__ = ("given",)
    given: dict[str, Any]  # the settings it names, as given

    def __init__(self, **settings: Any):
        object.__setattr__(self, "given", dict(settings))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Recipe is immutable: use recipe.replace(...)")

    def get(self, name: str, default: Any = None) -> Any:
        """The value the recipe gives ``name``, else ``default``."""
        return self.given.get(name, default)

    def replace(self, **changes: Any) -> Recipe:
        """This recipe with ``changes``."""
        return Recipe(**{**self.given, **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recipe) and self.given == other.given

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.given.items())))

    def __repr__(self) -> str:
        return f"Recipe({', '.join(f'{k}={v!r}' for k, v in self.given.items())})"


ARTICLE_RECIPE = Recipe()
"""The article's: every recipe setting at ``TrainConfig``'s default (SGD at 0.1, batch 64, 5
epochs, a constant rate, no augmentation)."""


class ModelSpec:
    """A named architecture: a stack of layers, validated and shaped from the input.

    ``ModelSpec("mine", [Conv2D(16, 3), ReLU(), GlobalAvgPool(), Dense(10)])`` trains on every
    backend. Raises ``ConfigError`` naming the layer when the stack cannot work.
    """

    def __init__(
        self,
        name: str,
        layers: list[Layer] | tuple[Layer, ...],
        description: str = "",
        recipe: Recipe | None = None,
        input_shape: Shape = IMAGE_SHAPE,
        num_classes: int = NUM_CLASSES,
    ):
        try:
            check_name(name, "model")
        except ValueError as exc:
            message, _, fix = str(exc).partition("|")
            raise ConfigError(message, fix=fix) from None
        if not isinstance(description, str):
            raise ConfigError(
                f"model {name!r}: its description must be text, got {str(description)[:40]!r}",
                fix="pass description='...'",
            )
        self.name, self.description = name, description
        self.recipe = recipe or ARTICLE_RECIPE
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ConfigError(
                f"model {self.name!r} has no layers", fix="give at least one Dense layer"
            )
        self.layers = _named(self.name, tuple(layers), "", 1, [0])
        self.shapes_between = self._infer_shapes()
        self.params = tuple(p for layer, shape in self.stack() for p in layer.params(shape))
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(
                f"model {self.name!r} has two layers named alike ({', '.join(twice)})",
                fix="give each layer its own name",
            )

    def _infer_shapes(self) -> list[Shape]:
        shapes = [self.input_shape]
        for index, layer in enumerate(self.layers):
            shapes.append(_output_shape(self.name, f"layer {index + 1}", layer, shapes[-1]))
        if shapes[-1] != (self.num_classes,):
            raise ConfigError(
                f"model {self.name!r} ends in shape {shapes[-1]}, not one logit per class "
                f"({self.num_classes},)",
                fix=f"end with Dense({self.num_classes})",
            )
        return shapes

    # -- what backends and files need ---------------------------------------------------
    def stack(self) -> list[tuple[Layer, Shape]]:
        """The top-level layers, each with the shape of its input."""
        return list(zip(self.layers, self.shapes_between, strict=False))

    def walk(self) -> Iterator[Layer]:
        """Every layer, nested ones included, depth first."""

        def visit(layers):
            for layer in layers:
                yield layer
                yield from visit(layer.children())

        yield from visit(self.layers)

    def kinds(self) -> set[str]:
        """The layer types this spec uses, nested ones included."""
        return {layer.kind for layer in self.walk()}

    @property
    def output_shapes(self) -> list[Shape]:
        return self.shapes_between[1:]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter and buffer by neutral name."""
        return {p.name: p.shape for p in self.params}

    def param_specs(self) -> dict[str, ParamSpec]:
        """Every parameter and buffer's ``ParamSpec`` by neutral name."""
        return {p.name: p for p in self.params}

    def trainable(self) -> list[str]:
        """Names of the parameters the optimizer updates, in order."""
        return [p.name for p in self.params if p.trainable]

    def count_params(self) -> int:
        """Number of trainable values."""
        return sum(math.prod(p.shape) for p in self.params if p.trainable)

    def memory_estimate(self, batch_size: int) -> tuple[int, int]:
        """(bytes for the parameters with their gradients and optimizer slots, bytes of one
        batch's activations kept for the backward pass): what training will allocate, roughly,
        computed from the shapes alone."""
        values = 0
        for layer, shape in self.stack():
            values += _activation_values(layer, shape)
        return 16 * sum(math.prod(p.shape) for p in self.params), 12 * batch_size * values

    def forward_macs(self) -> int:
        """Multiply-adds of one sample's forward pass, roughly: each tensor's size times the
        positions its layer computes at (one for flat outputs, H·W for images). Backends choose
        thread counts by it: a small model does not gain from threads, and loses when the cores
        are busy."""
        total = 0
        for layer, shape in self.stack():
            out = layer.output_shape(shape)
            positions = math.prod(out[:-1]) if len(out) == 3 else 1
            total += positions * sum(math.prod(p.shape) for p in layer.params(shape) if p.trainable)
        return total

    def training_flops(self) -> int:
        """Floating-point operations to train on one image, counted from the layers: the forward
        pass's multiply-adds (``Layer.macs``), again for the weight gradients and again for the
        input gradients (but the first weighted layer's, which nothing needs), two operations a
        multiply-add. What the speedrun's GFLOP/s figures divide by."""
        macs = [layer.macs(shape) for layer, shape in self.stack()]
        first = next((m for m in macs if m), 0)
        return 2 * (3 * sum(macs) - first)

    def macs_by_kind(self) -> dict[str, int]:
        """``Layer.macs`` of one image's forward pass by layer type, nested layers (a
        ``Residual``'s body and projection) counted as their own type; types without
        multiply-adds left out."""
        found: dict[str, int] = {}

        def visit(layers, shape):
            for layer in layers:
                if layer.children():
                    visit(layer.children(), shape)
                    projection = getattr(layer, "shortcut", lambda _: None)(shape)
                    if projection is not None:
                        visit([projection], shape)
                elif layer.macs(shape):
                    found[layer.kind] = found.get(layer.kind, 0) + layer.macs(shape)
                shape = layer.output_shape(shape)

        visit(self.layers, self.input_shape)
        return found

    def is_small(self) -> bool:
        """Whether CPU backends should train it on one thread (``SMALL_MODEL_MACS``)."""
        return self.forward_macs() < SMALL_MODEL_MACS

    def has(self, kind: str) -> bool:
        """Whether any layer (nested ones included) is of type ``kind``."""
        return kind in self.kinds()

    def has_capability(self, capability: str) -> bool:
        """Whether any layer (nested ones included) declares ``capability``
        (``Layer.capabilities``): what engines test, never a layer type's name."""
        return any(capability in layer.capabilities for layer in self.walk())

    def is_two_layer_perceptron(self) -> bool:
        """Flatten, affine, ReLU, affine, as the layer types declare themselves (the article's
        shape): engines' fused fast paths recognise it."""
        wanted = ("flatten", "affine", "relu", "affine")
        return len(self.layers) == len(wanted) and all(
            need in layer.capabilities for layer, need in zip(self.layers, wanted, strict=True)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_torch(cls, module: Any, name: str = "from_torch", **kwargs: Any) -> ModelSpec:
        """The spec of a plain ``torch.nn.Sequential`` (Flatten, Linear, ReLU, Conv2d with
        padding 0 or 'same', MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), BatchNorm1d/2d,
        Dropout), its BatchNorm momentum and epsilon recorded; anything else is a
        ``ConfigError`` naming it. Weights are not taken: train or eject the spec."""
        from .importers import check_declared, from_torch

        layers, declared = from_torch(module)
        spec = cls(name, layers, **kwargs)
        check_declared(spec, declared)
        return spec

    @classmethod
    def from_keras(cls, model: Any, name: str = "from_keras", **kwargs: Any) -> ModelSpec:
        """The spec of a plain ``keras.Sequential`` (Flatten, Dense, ReLU and relu activations,
        Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, BatchNormalization,
        Dropout); Keras' BatchNorm momentum is converted to fmnist's (1 − Keras')."""
        from .importers import from_keras

        return cls(name, from_keras(model), **kwargs)

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        """The inverse of ``to_dict`` (weight files and ``--model FILE.json`` hold this).

        Anything that is not such a description, at any depth, is a ``ConfigError`` naming the
        place, checked before any array is allocated (``check_budget`` bounds the sizes).
        """
        if not isinstance(data, dict) or not isinstance(data.get("layers", []), list):
            raise ConfigError(
                f"a recorded architecture must be {{'name': …, 'layers': [...]}}, got "
                f"{str(data)[:80]}",
                fix="save the weights again with fmnist",
            )
        name = data.get("name", "custom")
        if not isinstance(name, str):
            raise ConfigError(
                f"a recorded architecture's name must be a string, got {str(name)[:40]!r}",
                fix="save the weights again with fmnist",
            )
        return cls(name, _layers_from(name, data.get("layers", []), "", 1, [0]))

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
                params[spec.name] = np.full(
                    spec.shape, 1.0 if spec.init == "ones" else 0.0, dtype=np.float32
                )
            else:
                raise ValueError(f"unknown initialiser {spec.init!r} for {spec.name}")
        return params

    def check_params(
        self, params: dict[str, np.ndarray], source: str = "weights"
    ) -> dict[str, np.ndarray]:
        """Validate names and shapes; return float32 contiguous copies. Raises WeightsError."""
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
        """One line per top-level layer: kind, name, output shape, parameter count."""
        lines = []
        for index, (layer, shape) in enumerate(self.stack()):
            count = sum(math.prod(p.shape) for p in layer.params(shape) if p.trainable)
            lines.append(
                f"{layer.kind:<14}{layer.name:<8}{str(self.shapes_between[index + 1]):<16}{count}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"ModelSpec({self.name!r}, {self.count_params()} parameters, {len(self.layers)} layers)"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.name)
