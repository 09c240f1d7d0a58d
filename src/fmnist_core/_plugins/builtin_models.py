"""The built-in model architectures and the neutral weight format."""

from ..hookspecs import hookimpl
from ..models import MLP
from ..weights import NEUTRAL


@hookimpl
def fmnist_models():
    return [MLP]


@hookimpl
def fmnist_weight_formats():
    return [NEUTRAL]
