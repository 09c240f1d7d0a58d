"""Registers the built-in recipes: ``mlp`` (the article's) and ``cnn``."""

from ..hookspecs import hookimpl
from ..spec.recipes import CNN, MLP


@hookimpl
def fmnist_models():
    return [MLP, CNN]
