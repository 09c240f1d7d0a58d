"""What a layer type is: one class holding everything the core knows about it.

A layer type (``Dense``, ``Conv2D``, a plugin's own) is a frozen dataclass subclassing ``Layer``,
in one module, registered by ``kind`` through the ``fmnist_layers`` hook. It declares:

* its hyper-parameters as fields made with ``hyper(...)``, checked before anything is built;
* ``output_shape(shape)``: its shape rule (raise ``ValueError("what|fix")`` when it cannot work);
* ``params(shape)``: its tensors, each a ``ParamSpec`` with its neutral layout and initialiser;
* ``reference(shape, state)``: its NumPy reference forward and backward (a ``ReferenceOp``);
* ``to_onnx(graph, x, shape)``: its ONNX lowering (``fmnist_core.io.onnx.OnnxGraph``);
* ``examples()``: small stacks using it, which the conformance suite trains on every backend;
* ``children()``/``with_children()`` if it holds a stack of layers (``Residual``).

Each training backend lowers it through its ``LOWERINGS`` table (``fmnist_core.engine.lowering``).
Shapes are channels-last: images ``(H, W, C)`` (the dataset's ``(H, W)`` counts as ``C = 1``),
flat activations ``(features,)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from ..checks import declared
from ..errors import ConfigError

Shape = tuple[int, ...]

LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,15}")
"""A layer's name: Python identifiers joined by dots (``res1.conv1``), so that a name read from
a shared file can only ever be a name in the programs and pages fmnist writes."""
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A model's name: a short plain name (letters, digits, ``_ . -``, not starting with a dot), so
that it is safe as a file name and in program text."""


def check_name(name: Any, what: str = "layer") -> str:
    """``name`` if it follows the rule for ``what`` ("layer" or "model"); else a
    ``ValueError("what|fix")`` that shows the name escaped."""
    rule, example = (
        (LAYER_NAME, "'fc9' or 'res1.conv1'") if what == "layer" else (MODEL_NAME, "'my-model'")
    )
    if not isinstance(name, str):
        raise ValueError(
            f"a {what} name must be a string, got {str(name)[:40]!r}|give it a name like {example}"
        )
    if not rule.fullmatch(name):
        allowed = (
            "must be Python identifiers joined by dots"
            if what == "layer"
            else "may hold only letters, digits, '_', '.' and '-' (at most 64, the first a "
            "letter or digit)"
        )
        raise ValueError(f"{what} name {name[:60]!r} {allowed}|give it a name like {example}")
    return name


#: neutral layouts a ``ParamSpec`` may have; backends convert each to their framework's
LAYOUTS = {
    "vector": "(features,): biases, scales, statistics",
    "dense": "(in, out): a Dense kernel (torch's Linear keeps (out, in))",
    "conv": "(kh, kw, in, out): a Conv2D kernel, TF's HWIO (torch and ONNX keep (out, in, kh, kw))",
}


@dataclass(frozen=True)
class ParamSpec:
    """One tensor: neutral name, shape, neutral ``layout`` (a key of ``LAYOUTS``), initialiser
    (``glorot_uniform``, ``zeros``, ``ones``), whether the optimizer trains it (``False`` for
    buffers such as BatchNorm's running statistics) and the fans of ``glorot_uniform``."""

    name: str
    shape: tuple[int, ...]
    init: str = "zeros"
    trainable: bool = True
    fans: tuple[int, int] | None = None
    layout: str = "vector"


def hyper(
    default: Any,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    choices: tuple[Any, ...] = (),
    help: str = "",
) -> Any:
    """A layer hyper-parameter: a dataclass field whose value ``Layer.validate`` checks by the
    default's type (an integer, a number, a string or a flag) and the bounds given here
    (``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive)."""
    return field(
        default=default,
        metadata={
            "hyper": True,
            "minimum": minimum,
            "above": above,
            "maximum": maximum,
            "below": below,
            "choices": choices,
            "help": help,
        },
    )


def image_shape(shape: Shape) -> Shape:
    """``(H, W)`` images count as ``(H, W, 1)``."""
    return (*shape, 1) if len(shape) == 2 else shape


def require_image(shape: Shape, before: str = "Flatten") -> tuple[int, int, int]:
    """``(H, W, C)`` of an image input, or the ``ValueError`` for a flat one."""
    if len(shape) not in (2, 3):
        raise ValueError(f"needs an image (H, W, C), got shape {shape}|put it before {before}")
    h, w, c = image_shape(shape)
    return h, w, c


@dataclass(frozen=True)
class Layer:
    """A layer of a ``ModelSpec``. ``name`` is the prefix of its parameters (given, or numbered
    from ``prefix`` by the spec: ``fc1``; inside a ``Residual`` ``res1.conv1``)."""

    kind: ClassVar[str] = ""
    prefix: ClassVar[str] = ""  # the numbering prefix of layers with parameters
    capabilities: ClassVar[frozenset[str]] = frozenset()
    """What engines may rely on, declared by the type, never read off its name: "convolution"
    (a spatial convolution: channels-last layouts pay), "affine" (a dense x·W + b), "flatten",
    "relu" (the fused perceptron paths recognise flatten, affine, relu, affine)."""
    name: str = field(default="", kw_only=True)

    @staticmethod
    def of_kind(kind: str) -> type[Layer]:
        """The defined ``Layer`` class of type ``kind`` (its examples build stacks of other
        types with it, so that layer modules never import each other)."""
        found, matches = list(Layer.__subclasses__()), []
        while found:
            cls = found.pop(0)
            if cls.kind == kind:
                matches.append(cls)
            found.extend(cls.__subclasses__())
        built_in = [c for c in matches if c.__module__.startswith("fmnist_core.spec.layers.")]
        if not built_in + matches:
            raise KeyError(kind)
        return (built_in + matches)[0]

    # -- the spec ---------------------------------------------------------------------
    def validate(self) -> None:
        """Check every ``hyper`` field's type and range; ``ValueError("what|fix")`` if wrong."""
        if self.name != "":
            check_name(self.name, "layer")
        for f in fields(self):
            if f.metadata.get("hyper"):
                check_hyper(f.name, getattr(self, f.name), f.default, dict(f.metadata))

    def output_shape(self, shape: Shape) -> Shape:
        """The shape this layer gives for an input of ``shape`` (batch axis excluded)."""
        return shape

    def params(self, shape: Shape) -> list[ParamSpec]:
        """The parameters (and buffers) for input ``shape``, in the order Keras keeps them."""
        return []

    def macs(self, shape: Shape) -> int:
        """Multiply-adds of one example's forward pass for an input of ``shape``: each weight
        matrix (a parameter of layout ``dense`` or ``conv``) times the output positions it is
        applied at. Elementwise work (biases, BatchNorm, activations, pooling) is not counted:
        it is bound by memory, not arithmetic. Layers holding others add theirs."""
        out = self.output_shape(shape)
        positions = math.prod(out[:-1]) if len(out) == 3 else 1
        weights = (p for p in self.params(shape) if p.layout in ("dense", "conv"))
        return positions * sum(math.prod(p.shape) for p in weights)

    def children(self) -> tuple[Layer, ...]:
        """Layers this one holds (a ``Residual``'s body); named and checked with the spec."""
        return ()

    def with_children(self, children: tuple[Layer, ...]) -> Layer:
        """A copy holding ``children`` instead (the spec names them)."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """``{"type": kind, ...the non-default fields}``: how files record the layer."""
        out: dict[str, Any] = {"type": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.default is not MISSING and value == f.default:
                continue
            out[f.name] = [c.to_dict() for c in value] if is_stack(value) else value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], build_stack) -> Layer:
        """The layer of ``to_dict``'s ``values`` (without ``type``); ``build_stack(list)`` builds
        nested stacks. Unknown arguments raise ``TypeError``."""
        return cls(**values)

    def renamed(self, name: str) -> Layer:
        return replace(self, name=name)

    # -- the NumPy reference and ONNX ----------------------------------------------------
    def reference(self, shape: Shape, state: ReferenceState) -> ReferenceOp:
        """The NumPy reference of this layer for input ``shape``: forward and backward."""
        raise NotImplementedError(f"layer type {self.kind} has no NumPy reference")

    def to_onnx(self, graph, x: str, shape: Shape) -> str:
        """Add this layer's nodes to ``graph`` (an ``OnnxGraph``) reading tensor ``x``; return
        the output's name. Images are NCHW inside the graph, flat activations (n, features)."""
        raise NotImplementedError(f"layer type {self.kind} has no ONNX lowering")

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        """Small stacks (each a whole model: 28×28 in, 10 logits out) using this layer type;
        the conformance suite trains each on every backend against the NumPy reference."""
        return []


def is_stack(value: Any) -> bool:
    """Whether ``value`` is a tuple of layers (a nested stack)."""
    return isinstance(value, tuple) and bool(value) and all(isinstance(v, Layer) for v in value)


def check_hyper(name: str, value: Any, default: Any, meta: dict) -> None:
    """The check ``Layer.validate`` makes of one ``hyper`` field: the declared check of its
    default's type and bounds (``fmnist_core.checks.declared``, as settings and backend options
    are checked), as ``ValueError("what|fix")``."""
    check = declared(
        type(default),
        choices=tuple(meta["choices"]),
        minimum=meta["minimum"],
        above=meta["above"],
        maximum=meta["maximum"],
        below=meta["below"],
    )
    try:
        check(name, value)
    except ConfigError as exc:
        raise ValueError(f"{exc.message}|pass {name}={default!r}") from None


# -- the NumPy reference -------------------------------------------------------------------


@dataclass
class ReferenceState:
    """What reference ops share: the parameters and gradients by neutral name, and the
    generator dropout draws from."""

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    rng: np.random.Generator


class ReferenceOp:
    """One layer's NumPy maths: ``forward`` keeps what ``backward`` needs, ``backward`` takes
    the gradient of the output, fills ``state.grads`` and returns the gradient of the input."""

    def __init__(self, layer: Layer, shape: Shape, state: ReferenceState):
        self.layer, self.shape, self.state = layer, shape, state

    def param(self, suffix: str) -> np.ndarray:
        return self.state.params[f"{self.layer.name}.{suffix}"]

    def set_grad(self, suffix: str, value: np.ndarray) -> None:
        self.state.grads[f"{self.layer.name}.{suffix}"] = value

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy


def float64_sum(x: np.ndarray, axis) -> np.ndarray:
    """A float32 sum accumulated in float64 (long reductions across axes)."""
    return x.sum(axis=axis, dtype=np.float64).astype(np.float32)


def as_image(x: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` batches get their channel axis."""
    return x[..., None] if x.ndim == 3 else x
