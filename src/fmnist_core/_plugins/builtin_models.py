"""The built-in recipes (``mlp``, the article's; ``cnn``) and the neutral weight format.

They are registered through the same ``fmnist_models`` hook a third-party plugin uses.
"""

from ..hookspecs import hookimpl
from ..models import CNN, MLP
from ..weights import NEUTRAL


@hookimpl
def fmnist_models():
    return [MLP, CNN]


@hookimpl
def fmnist_weight_formats():
    return [NEUTRAL]
