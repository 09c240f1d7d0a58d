"""Registers the inference-only ``onnx`` backend and the onnxruntime export targets (``onnx``,
``onnx-int8``, ``web``); no onnxruntime import here."""

from __future__ import annotations

from fmnist_core import Backend, EngineConfig, Option, hookimpl
from fmnist_core.plugin_api import ExportTarget, load_on_call


class OnnxBackend(Backend):
    name = "onnx"
    description = (
        "onnxruntime, inference only: evaluate and predict any model (ONNX built from its spec)"
    )
    priority = -10  # never the default: it cannot train
    requires = ("onnxruntime", "onnx")
    trains = False
    options = (Option("threads", int, None, "onnxruntime's intra-op threads (default: its own)"),)

    def lowers(self, kind: str) -> bool:
        """Every layer type with an ONNX lowering (``Layer.to_onnx``) runs here."""
        from fmnist_core import Layer, layer_types

        layer = layer_types().get(kind)
        return layer is not None and layer.to_onnx is not Layer.to_onnx

    def create_engine(self, config: EngineConfig):
        from .engine import OnnxEngine

        return OnnxEngine(config)


@hookimpl
def fmnist_backends():
    return [OnnxBackend()]


def _onnx_target(name, description, suffix, write, quantized=False, **kinds) -> ExportTarget:
    module = "fmnist_onnx.exports"
    return ExportTarget(
        name=name,
        description=description,
        suffix=suffix,
        runtime="onnxruntime",
        write=load_on_call(module, write),
        load=load_on_call(module, kinds.get("load", "load_onnx")),
        read_metadata=load_on_call(module, kinds.get("read_metadata", "read_metadata")),
        stamp=load_on_call(module, kinds.get("stamp", "stamp")),
        quantized=quantized,
        plugin="fmnist_onnx",
        requires=("onnx", "onnxruntime"),
    )


@hookimpl
def fmnist_export_targets():
    return [
        _onnx_target("onnx", "ONNX, float32 (opset 17), run by onnxruntime", ".onnx", "write_onnx"),
        _onnx_target(
            "onnx-int8",
            "ONNX quantised to int8 (QDQ, per-channel weights), calibrated on 512 training images",
            ".int8.onnx",
            "write_int8",
            quantized=True,
        ),
        _onnx_target(
            "web",
            "a folder with a page, model.onnx and onnxruntime-web: classifies in the browser, "
            "served by any static host (needs $FMNIST_ORT_WEB: npm pack onnxruntime-web)",
            "web/",
            "write_web",
            load="load_web",
            read_metadata="read_web_metadata",
            stamp="stamp_web",
        ),
    ]
