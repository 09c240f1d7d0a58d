"""Registers the built-in layer types (``fmnist_core.spec.layers``)."""

from ..hookspecs import hookimpl
from ..spec.layers import BUILTIN_LAYERS


@hookimpl
def fmnist_layers():
    return list(BUILTIN_LAYERS.values())
