"""A model's layers as read and checked: named (``fc1``, ``res1.conv1``), bounded in depth and
count, each layer's own checks and shape rule run with errors that say which layer, and built
from recorded dicts (``ModelSpec.from_dict``)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError
from .layer import Layer, Shape

MAX_DEPTH = 16
"""How deeply layers may nest (a Residual in a Residual …): deeper is an error, not a crash."""
MAX_LAYERS = 2000
"""The most layers one spec may hold, nested ones included."""


def _bounded(model: str, depth: int, count: list[int], more: int) -> None:
    """The errors for nesting deeper than ``MAX_DEPTH`` or holding more than ``MAX_LAYERS``
    layers (``count`` counts them as a spec is read)."""
    count[0] += more
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"model {model!r} nests layers more than {MAX_DEPTH} deep",
            fix="flatten the architecture",
        )
    if count[0] > MAX_LAYERS:
        raise ConfigError(
            f"model {model!r} has more than {MAX_LAYERS} layers", fix="use fewer layers"
        )


def _named(
    model: str, layers: tuple, parent: str, depth: int, count: list[int]
) -> tuple[Layer, ...]:
    """``layers`` checked, with their names given (``prefix`` numbered per stack, children
    prefixed with their parent's name); ``count`` counts every layer against ``MAX_LAYERS``."""
    from .. import plugins

    _bounded(model, depth, count, 0)
    counts: dict[str, int] = {}
    named = []
    for index, layer in enumerate(layers):
        where = f"model {model!r}, {parent + ' ' if parent else ''}layer {index + 1}"
        _bounded(model, depth, count, 1)
        if not isinstance(layer, Layer):
            raise ConfigError(
                f"{where} is {str(layer)[:60]!r}, not a layer",
                fix=f"use one of {', '.join(sorted(plugins.layer_types()))}",
            )
        _layer_code(f"{where} ({layer.kind})", layer, "checks", layer.validate)
        if layer.prefix:
            counts[layer.prefix] = counts.get(layer.prefix, 0) + 1
            layer = layer.renamed(
                _inside(parent, layer.name or f"{layer.prefix}{counts[layer.prefix]}")
            )
        elif layer.name and parent:
            layer = layer.renamed(_inside(parent, layer.name))
        children = layer.children()
        if children:
            layer = layer.with_children(
                _named(model, children, layer.name or f"{parent}{layer.kind}", depth + 1, count)
            )
        named.append(layer)
    return tuple(named)


def _activation_values(layer: Layer, shape: Shape) -> int:
    """The values a layer (and the layers inside it) outputs for one sample."""
    values, inner = math.prod(layer.output_shape(shape)), shape
    for child in layer.children():
        values += _activation_values(child, inner)
        inner = child.output_shape(inner)
    return values


def _inside(parent: str, name: str) -> str:
    """The full name of a layer called ``name`` inside ``parent`` (a name already inside it, as
    when a named spec's layers are reused, stays)."""
    if not parent or name.startswith(f"{parent}."):
        return name
    return f"{parent}.{name}"


def _layer_code(where: str, layer: Layer, what: str, call) -> Any:
    """``call()``, a layer type's own code (a plugin's, perhaps): ``ValueError("what|fix")`` is
    the user's mistake; any other error is the layer type's, named in one line with its module."""
    try:
        return call()
    except ValueError as exc:
        message, _, fix = str(exc).partition("|")
        raise ConfigError(f"{where}: {message}", fix=fix or "change the layer") from None
    except Exception as exc:
        module = type(layer).__module__
        raise ConfigError(
            f"{where}: the {what} of layer type {layer.kind!r} ({module}) failed: "
            f"{type(exc).__name__}: {str(exc)[:120]}",
            fix=f"report it to the authors of {module.split('.')[0]}, or use another layer type",
        ) from None


def _output_shape(model: str, where: str, layer: Layer, shape: Shape) -> Shape:
    """``layer.output_shape(shape)``, its children's shapes checked first so that an error names
    the innermost layer; a ``ValueError("what|fix")`` becomes a ``ConfigError``."""
    inner = shape
    for index, child in enumerate(layer.children()):
        inner = _output_shape(
            model, f"{where} ({layer.kind} {layer.name}), layer {index + 1}", child, inner
        )
    named = f"model {model!r}, {where} ({layer.kind} {layer.name})"
    out = _layer_code(named, layer, "shape rule", lambda: layer.output_shape(shape))
    if (
        not isinstance(out, tuple)
        or len(out) not in (1, 3)
        or not all(isinstance(size, int) and not isinstance(size, bool) for size in out)
    ):
        raise ConfigError(
            f"{named}: the shape rule of layer type {layer.kind!r} ({type(layer).__module__}) "
            f"returned {str(out)[:60]!r}, not a shape",
            fix="its plugin must return a tuple (features,) or (height, width, channels)",
        )
    if any(size < 1 for size in out):
        raise ConfigError(
            f"model {model!r}, {where} ({layer.kind}) leaves nothing: shape {out}",
            fix="use fewer pooling or strided layers",
        )
    return out


def _layers_from(
    model: str, items: Any, where: str, depth: int, count: list[int]
) -> tuple[Layer, ...]:
    """Layers from their ``to_dict`` descriptions, recursively, bounded in depth and count."""
    from .. import plugins

    known = plugins.layer_types()
    if not isinstance(items, list):
        raise ConfigError(
            f"model {model!r}{where}: layers must be a list, got {str(items)[:60]}",
            fix="save the weights again with fmnist",
        )
    _bounded(model, depth, count, 0)
    layers = []
    for index, item in enumerate(items):
        place = f"{where}, layer {index + 1}" if where else f", layer {index + 1}"
        _bounded(model, depth, count, 1)
        if not isinstance(item, dict):
            raise ConfigError(
                f"model {model!r}{place}: {str(item)[:60]!r} is not a layer description",
                fix="save the weights again with fmnist",
            )
        values = dict(item)
        kind = values.pop("type", None)
        if not isinstance(kind, str) or kind not in known:
            raise ConfigError(
                f"model {model!r}{place}: unknown layer type {str(kind)[:60]!r}",
                fix=f"use one of {', '.join(sorted(known))}, "
                "or install the plugin that provides it",
            )
        try:
            layers.append(
                known[kind].from_dict(
                    values,
                    lambda sub, p=place, k=kind: _layers_from(
                        model, sub, f"{p} ({k})", depth + 1, count
                    ),
                )
            )
        except ConfigError:
            raise  # from a nested stack: it names its own place
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"model {model!r}{place} ({kind}): {str(exc)[:200]}",
                fix="check the layer's arguments",
            ) from None
    return tuple(layers)
