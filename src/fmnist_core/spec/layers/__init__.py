"""The built-in layer types, one module per layer or small family, listed once below (registered
through the ``fmnist_layers`` hook by ``fmnist_core.builtin.layers``, exported as
``fmnist_core.<Name>``). Adding a built-in layer: its module here, and its name in this list."""

from __future__ import annotations

from ..layer import Layer
from .activation import GELU, ReLU
from .batch_norm import BatchNorm
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .pooling import AvgPool2D, GlobalAvgPool, MaxPool2D
from .residual import Residual

__all__ = [
    "BUILTIN_LAYERS",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GELU",
    "GlobalAvgPool",
    "MaxPool2D",
    "ReLU",
    "Residual",
]
"""Written out, as type checkers need to see what is re-exported; the one list of the names."""

BUILTIN_LAYERS: dict[str, type[Layer]] = {name: globals()[name] for name in __all__[1:]}
"""The built-in layer types by class name (which is also their ``kind``)."""
