"""Registers the neutral weight format (safetensors) and the framework-free ONNX export."""

from ..hookspecs import hookimpl
from ..io.weights import NEUTRAL, WeightFormat
from ..plugins import load_on_call

ONNX = WeightFormat(
    name="onnx",
    description="ONNX model (opset 17): uint8 images in; logits, probabilities, class_index out "
    "(fmnist-core[onnx])",
    suffixes=(".onnx",),
    read=load_on_call("fmnist_core.io.onnx", "read_onnx"),
    write=load_on_call("fmnist_core.io.onnx", "write_onnx"),
    plugin="fmnist_core",
    requires=("onnx",),
)


@hookimpl
def fmnist_weight_formats():
    return [NEUTRAL, ONNX]
