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

from ..atomic import atomic_write_bytes
from ..errors import WeightsError
from ..labels import LABELS
from ..spec.model import ModelSpec

OPSET = 17
"""The ONNX opset fmnist writes (onnxruntime ≥ 1.13 runs it)."""


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # an optional extra
        raise WeightsError(
            "writing ONNX needs the onnx package", fix='pip install "fmnist-core[onnx]"'
        ) from exc
    return onnx


def to_onnx_layout(spec_layout: str, value: np.ndarray) -> np.ndarray:
    """A neutral tensor in ONNX's layout: conv kernels (kh, kw, in, out) → (out, in, kh, kw)."""
    return np.ascontiguousarray(value.transpose(3, 2, 0, 1)) if spec_layout == "conv" else value


def from_onnx_layout(spec_layout: str, value: np.ndarray) -> np.ndarray:
    """The inverse of ``to_onnx_layout``."""
    return np.ascontiguousarray(value.transpose(2, 3, 1, 0)) if spec_layout == "conv" else value


class OnnxGraph:
    """The graph a spec's layers add their nodes to (``Layer.to_onnx``): ``node`` adds one and
    returns its output's name; ``const`` adds a constant; parameters are initialisers under their
    neutral names, already in ONNX's layout."""

    def __init__(self):
        from onnx import helper

        self.helper = helper
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def node(self, op: str, inputs: list[str], **attributes) -> str:
        self._count += 1
        output = f"t{self._count}_{op.lower()}"
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attributes))
        return output

    def const(self, values, dtype: str = "float32") -> str:
        from onnx import numpy_helper

        self._count += 1
        name = f"const{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype), name))
        return name

    def run(self, stack, x: str, shape) -> str:
        """Add the nodes of a stack of layers (a ``Residual``'s body) starting from ``x``."""
        for layer in stack:
            x = layer.to_onnx(self, x, shape)
            shape = layer.output_shape(shape)
        return x


def build_onnx(
    spec: ModelSpec, params: dict[str, np.ndarray], metadata: dict[str, str] | None = None
):
    """An ``onnx.ModelProto`` computing ``spec`` with ``params`` (neutral layout, checked)."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    params = spec.check_params(params)
    layouts = {p.name: p.layout for p in spec.params}
    graph = OnnxGraph()
    graph.initializers += [
        numpy_helper.from_array(to_onnx_layout(layouts[n], v), n) for n, v in params.items()
    ]
    height, width = spec.input_shape
    scaled = graph.node(
        "Div",
        [graph.node("Cast", ["images"], to=TensorProto.FLOAT), graph.const(np.float32(255.0))],
    )
    x = graph.node("Unsqueeze", [scaled, graph.const([1], "int64")])  # NCHW until a Flatten
    x = graph.run(spec.layers, x, spec.input_shape)
    graph.nodes += [
        helper.make_node("Identity", [x], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["class_index"], axis=1, keepdims=0),
    ]
    classes = spec.num_classes
    proto = helper.make_graph(
        graph.nodes,
        f"fmnist_{spec.name}",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["n", height, width])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", classes]),
            helper.make_tensor_value_info("class_index", TensorProto.INT64, ["n"]),
        ],
        graph.initializers,
    )
    model = helper.make_model(
        proto, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fmnist"
    )
    model.ir_version = 8  # onnxruntime ≥ 1.13 reads it
    meta = {
        "fmnist_model": spec.name,
        "fmnist_architecture": json.dumps(spec.to_dict()),
        "labels": json.dumps(list(LABELS)),
        **(metadata or {}),
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(model)
    return model


def write_onnx(path: str | os.PathLike, weights) -> None:
    """The ``onnx`` weight format's writer: ``Weights`` → an ONNX file, atomically."""
    from .weights import architecture_of

    spec = architecture_of(weights)
    keep = {
        k: v
        for k, v in weights.metadata.items()
        if k in ("backend", "config", "versions", "epochs_done", "test_accuracy")
    }
    atomic_write_bytes(path, build_onnx(spec, weights.params, keep).SerializeToString())


def _onnx_shape(layout: str, shape) -> tuple[int, ...]:
    """A neutral shape as ONNX stores it."""
    return to_onnx_layout(layout, np.empty(shape, np.bool_)).shape


MAX_ONNX_BYTES = 2**30
"""An ONNX file larger than this is refused before it is read (fmnist's are a few MB)."""


def read_onnx(path: Path):
    """An ONNX file written by fmnist → ``Weights`` in the neutral layout."""
    onnx = _onnx()
    from onnx import numpy_helper

    from .weights import Weights, architecture_of

    if path.stat().st_size > MAX_ONNX_BYTES:
        raise WeightsError(
            f"{path} is {path.stat().st_size:,} bytes, larger than any fmnist model",
            fix="pass a file written by `fmnist export`",
        )
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # DecodeError and friends
        raise WeightsError(
            f"{path} is not an ONNX model ({str(exc).splitlines()[0][:160]})",
            fix="pass a file written by `fmnist export`",
        ) from exc
    meta = {p.key: p.value for p in model.metadata_props}
    if "fmnist_model" not in meta:
        raise WeightsError(
            f"{path} is an ONNX model fmnist did not write (no fmnist metadata)",
            fix="run it with onnxruntime directly, or export it with `fmnist export`",
        )
    kept = ("versions", "epochs_done", "test_accuracy", "fmnist_gate", "fmnist_export")
    metadata = {k: v for k, v in meta.items() if k in kept}
    spec = architecture_of(
        Weights(meta["fmnist_model"], {}, {"architecture": meta.get("fmnist_architecture", "")})
    )
    shapes, layouts = spec.shapes(), {p.name: p.layout for p in spec.params}
    params = {}
    for tensor in model.graph.initializer:
        if tensor.name not in layouts:
            continue
        declared, expected = (
            tuple(tensor.dims),
            _onnx_shape(layouts[tensor.name], shapes[tensor.name]),
        )
        if declared != expected:  # checked before its data is touched: dims can claim anything
            raise WeightsError(
                f"{path}: initializer {tensor.name} declares shape {declared[:8]}, model "
                f"{spec.name!r} has {expected}",
                fix="pass a file written by `fmnist export`",
            )
        try:
            value = numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as exc:
            raise WeightsError(
                f"{path}: initializer {tensor.name} does not hold its data ({str(exc)[:80]})",
                fix="pass a file written by `fmnist export`",
            ) from None
        params[tensor.name] = from_onnx_layout(layouts[tensor.name], value).astype(np.float32)
    try:  # an ONNX file runs on the onnx backend unless the caller names another
        recorded = json.loads(meta.get("config", "{}"))
    except (json.JSONDecodeError, RecursionError):
        recorded = {}
    config = {**(recorded if isinstance(recorded, dict) else {}), "backend": "onnx", "options": {}}
    metadata.update(
        architecture=meta.get("fmnist_architecture", ""),
        backend="onnx",
        source_format="onnx",
        config=json.dumps(config),
    )
    return Weights(meta["fmnist_model"], params, metadata)
