"""Weights on disk: the neutral safetensors format, format lookup over every plugin's formats,
and the framework-free ONNX export."""

from .formats import format_for, read_weights, write_weights
from .weights import NEUTRAL, WeightFormat, Weights, architecture_of

__all__ = [
    "NEUTRAL",
    "WeightFormat",
    "Weights",
    "architecture_of",
    "format_for",
    "read_weights",
    "write_weights",
]
