"""Registers the inference-only ``onnx`` backend (no onnxruntime import here)."""

from __future__ import annotations

from fmnist_core import Backend, EngineConfig, Option, hookimpl


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
