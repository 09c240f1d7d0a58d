"""The built-in recipes (``mlp``, the article's; ``cnn``) and the neutral weight format.

They are registered through the same ``fmnist_models`` hook a third-party plugin uses.
"""

from ..hookspecs import hookimpl
from ..models import CNN, MLP
from ..weights import NEUTRAL, WeightFormat, lazy

ONNX = WeightFormat(
    name="onnx",
    description="ONNX model (opset 17): uint8 images in; logits, probabilities, class_index out (fmnist-core[onnx])",
    suffixes=(".onnx",),
    read=lazy("fmnist_core.onnx_export", "read_onnx"),
    write=lazy("fmnist_core.onnx_export", "write_onnx"),
    plugin="fmnist_core",
    requires=("onnx",),
)


@hookimpl
def fmnist_models():
    return [MLP, CNN]


@hookimpl
def fmnist_weight_formats():
    return [NEUTRAL, ONNX]
