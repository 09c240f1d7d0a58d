"""What a model is, as data: layer types, ``ModelSpec`` stacks, recipes, optimizers and
schedules. Nothing here imports a framework."""

from .layer import Layer, ParamSpec, ReferenceOp, ReferenceState, hyper
from .layers import BUILTIN_LAYERS
from .model import ModelSpec, Recipe
from .optimizers import Optimizer, Schedule

__all__ = [
    "BUILTIN_LAYERS",
    "Layer",
    "ModelSpec",
    "Optimizer",
    "ParamSpec",
    "Recipe",
    "ReferenceOp",
    "ReferenceState",
    "Schedule",
    "hyper",
]
