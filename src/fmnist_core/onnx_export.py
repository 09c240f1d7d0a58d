"""Framework-free ONNX export of any ``ModelSpec`` from its neutral weights (``fmnist-core[onnx]``).

The graph takes uint8 images ``images`` (n, 28, 28), divides by 255 inside the graph (as every
backend does), and gives ``logits`` (n, 10) float32, ``probabilities`` (softmax) and
``class_index`` (int64). ONNX convolutions are channels-first: the graph works in NCHW, convolution
kernels are stored as (out, in, kh, kw), ``same`` padding is written out as TensorFlow pads it, and
a ``Flatten`` first transposes to the neutral (H, W, C) order. BatchNorm is in its inference form
(running statistics), Dropout is the identity. Initialisers carry the neutral names; the model's
name and architecture are in the metadata, so the file reads back into the neutral layout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import WeightsError
from .files import atomic_write_bytes
from .labels import LABELS
from .models import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ModelSpec,
    ReLU,
)

OPSET = 17
"""The ONNX opset fmnist writes (onnxruntime ≥ 1.13 runs it)."""


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # an optional extra
        raise WeightsError("writing ONNX needs the onnx package", fix='pip install "fmnist-core[onnx]"') from exc
    return onnx


def to_onnx_layout(name: str, value: np.ndarray) -> np.ndarray:
    """Conv kernels (kh, kw, in, out) → (out, in, kh, kw); everything else as it is."""
    return np.ascontiguousarray(value.transpose(3, 2, 0, 1)) if value.ndim == 4 else value


def from_onnx_layout(name: str, value: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(value.transpose(2, 3, 1, 0)) if value.ndim == 4 else value


def build_onnx(spec: ModelSpec, params: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
    """An ``onnx.ModelProto`` computing ``spec`` with ``params`` (neutral layout, checked)."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    params = spec.check_params(params)
    nodes, inits = [], [numpy_helper.from_array(to_onnx_layout(n, v), n) for n, v in params.items()]

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    height, width = spec.input_shape
    nodes += [helper.make_node("Cast", ["images"], ["pixels"], to=TensorProto.FLOAT),
              helper.make_node("Div", ["pixels", const("max_value", np.float32(255.0))], ["scaled"]),
              helper.make_node("Unsqueeze", ["scaled", const("channel_axis", np.array([1], np.int64))], ["x0"])]
    x, flat = "x0", False  # NCHW until a Flatten or GlobalAvgPool
    for index, (layer, shape) in enumerate(zip(spec.layers, spec.shapes_between, strict=False)):
        out = f"x{index + 1}"
        if isinstance(layer, Flatten):
            nodes.append(helper.make_node("Transpose", [x], [f"{out}_nhwc"], perm=[0, 2, 3, 1]))
            nodes.append(helper.make_node("Flatten", [f"{out}_nhwc"], [out], axis=1))
            flat = True
        elif isinstance(layer, Dense):
            nodes.append(helper.make_node("Gemm", [x, f"{layer.name}.weight", f"{layer.name}.bias"], [out]))
        elif isinstance(layer, Conv2D):
            pads = [0, 0, 0, 0]
            if layer.padding == "same":
                (top, bottom), (left, right) = layer.same_padding(shape[0]), layer.same_padding(shape[1])
                pads = [top, left, bottom, right]
            nodes.append(helper.make_node("Conv", [x, f"{layer.name}.weight", f"{layer.name}.bias"], [out],
                                          kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2, pads=pads))
        elif isinstance(layer, MaxPool2D):
            nodes.append(helper.make_node("MaxPool", [x], [out], kernel_shape=[layer.pool] * 2, strides=[layer.step] * 2))
        elif isinstance(layer, ReLU):
            nodes.append(helper.make_node("Relu", [x], [out]))
        elif isinstance(layer, BatchNorm):
            names = [f"{layer.name}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
            if flat:  # (n, c): BatchNormalization wants a channel axis 1 with spatial axes after it
                nodes.append(helper.make_node("Unsqueeze", [x, const(f"{out}_axes", np.array([2], np.int64))], [f"{out}_in"]))
                nodes.append(helper.make_node("BatchNormalization", [f"{out}_in", *names], [f"{out}_bn"], epsilon=layer.eps))
                nodes.append(helper.make_node("Squeeze", [f"{out}_bn", f"{out}_axes"], [out]))
            else:
                nodes.append(helper.make_node("BatchNormalization", [x, *names], [out], epsilon=layer.eps))
        elif isinstance(layer, Dropout):
            nodes.append(helper.make_node("Identity", [x], [out]))
        elif isinstance(layer, GlobalAvgPool):
            nodes.append(helper.make_node("GlobalAveragePool", [x], [f"{out}_pooled"]))
            nodes.append(helper.make_node("Flatten", [f"{out}_pooled"], [out], axis=1))
            flat = True
        x = out
    nodes += [helper.make_node("Identity", [x], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
              helper.make_node("ArgMax", ["logits"], ["class_index"], axis=1, keepdims=0)]
    classes = spec.num_classes
    graph = helper.make_graph(
        nodes, f"fmnist_{spec.name}",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["n", height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", classes]),
         helper.make_tensor_value_info("class_index", TensorProto.INT64, ["n"])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fmnist")
    model.ir_version = 8  # onnxruntime ≥ 1.13 reads it
    meta = {"fmnist_model": spec.name, "fmnist_architecture": json.dumps(spec.to_dict()),
            "labels": json.dumps(list(LABELS)), **(metadata or {})}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(model)
    return model


def write_onnx(path: str | os.PathLike, weights) -> None:
    """The ``onnx`` weight format's writer: ``Weights`` → an ONNX file, atomically."""
    from .trainer import model_of

    spec = model_of(weights)
    keep = {k: v for k, v in weights.metadata.items()
            if k in ("backend", "config", "versions", "epochs_done", "test_accuracy")}
    atomic_write_bytes(path, build_onnx(spec, weights.params, keep).SerializeToString())


def read_onnx(path: Path):
    """An ONNX file written by fmnist → ``Weights`` in the neutral layout."""
    onnx = _onnx()
    from onnx import numpy_helper

    from .weights import Weights

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # DecodeError and friends
        raise WeightsError(f"{path} is not an ONNX model ({str(exc).splitlines()[0][:160]})",
                           fix="pass a file written by `fmnist export`") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    if "fmnist_model" not in meta:
        raise WeightsError(f"{path} is an ONNX model fmnist did not write (no fmnist metadata)",
                           fix="run it with onnxruntime directly, or export it with `fmnist export`")
    params = {t.name: from_onnx_layout(t.name, numpy_helper.to_array(t)).astype(np.float32)
              for t in model.graph.initializer if "." in t.name}
    metadata = {k: v for k, v in meta.items() if k in ("versions", "epochs_done", "test_accuracy")}
    try:  # an ONNX file runs on the onnx backend unless the caller names another
        config = {**json.loads(meta.get("config", "{}")), "backend": "onnx", "options": {}}
    except json.JSONDecodeError:
        config = {"backend": "onnx"}
    metadata.update(architecture=meta.get("fmnist_architecture", ""), backend="onnx", source_format="onnx",
                    config=json.dumps(config))
    return Weights(meta["fmnist_model"], params, metadata)
