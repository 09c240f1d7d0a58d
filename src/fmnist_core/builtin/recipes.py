"""Registers the built-in recipes: ``mlp`` (the article's), ``cnn``, ``fast`` and ``accurate``."""

from ..hookspecs import hookimpl
from ..spec.recipes import ACCURATE, CNN, FAST, MLP


@hookimpl
def fmnist_models():
    return [MLP, CNN, FAST, ACCURATE]
