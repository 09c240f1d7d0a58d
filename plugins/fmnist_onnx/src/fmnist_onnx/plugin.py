"""Registers the inference-only ``onnx`` backend (no onnxruntime import here)."""

from __future__ import annotations

from fmnist_core import Backend, EngineConfig, Option, hookimpl


class OnnxBackend(Backend):
    name = "onnx"
    description = "onnxruntime, inference only: evaluate and predict any model (ONNX built from its spec)"
    priority = -10  # never the default: it cannot train
    requires = ("onnxruntime", "onnx")
    trains = False
    options = (Option("threads", int, None, "onnxruntime's intra-op threads (default: its own)"),)

    def create_engine(self, config: EngineConfig):
        from .engine import OnnxEngine

        return OnnxEngine(config)


@hookimpl
def fmnist_backends():
    return [OnnxBackend()]
