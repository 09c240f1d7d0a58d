"""Registers the built-in recipes: ``mlp`` (the article's), ``cnn``, ``fast``, ``balanced`` and
``accurate``."""

from ..hookspecs import hookimpl
from ..spec.recipes import ACCURATE, BALANCED, CNN, FAST, MLP


@hookimpl
def fmnist_models():
    return [MLP, CNN, FAST, BALANCED, ACCURATE]
