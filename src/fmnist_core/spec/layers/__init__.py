"""The built-in layer types, one module per layer or small family.

Every ``Layer`` subclass defined in a module of this package is a built-in layer type: adding a
module here adds a layer (registered through the ``fmnist_layers`` hook by
``fmnist_core.builtin.layers``, exported as ``fmnist_core.<Name>``).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..layer import Layer


def _discover() -> dict[str, type[Layer]]:
    found: dict[str, type[Layer]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Layer)
                and value.kind
                and value.__module__ == module.__name__
            ):
                found[value.__name__] = value
    return found


BUILTIN_LAYERS: dict[str, type[Layer]] = _discover()
"""The built-in layer types by class name (which is also their ``kind``)."""

globals().update(BUILTIN_LAYERS)
__all__ = ["BUILTIN_LAYERS", *BUILTIN_LAYERS]
