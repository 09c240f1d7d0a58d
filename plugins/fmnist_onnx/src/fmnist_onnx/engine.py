"""The onnxruntime engine: the model's ONNX graph (``fmnist_core.io.onnx``) in an
``InferenceSession``; ``set_params`` builds a new session."""

from __future__ import annotations

import numpy as np
import onnxruntime

from fmnist_core import BackendError, Engine, EngineConfig
from fmnist_core.plugin_api import build_onnx


class OnnxEngine(Engine):
    device = "cpu"

    def __init__(self, config: EngineConfig):
        self.spec = config.model
        self.threads = config.options.get("threads")
        self.set_params(config.initial_params or config.model.init_params(config.seed))

    def set_params(self, params):
        self.params = {k: np.array(v, np.float32) for k, v in params.items()}
        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        model = build_onnx(self.spec, self.params)
        self.session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def get_params(self):
        return {k: v.copy() for k, v in self.params.items()}

    def attach(self, images, labels):
        pass  # nothing to train

    def train_steps(self, batches, scalars):
        raise BackendError(
            "the onnx backend runs inference only", fix="train with torch, tf, keras or numpy"
        )

    def logits(self, images):
        return self.session.run(["logits"], {"images": np.ascontiguousarray(images, np.uint8)})[0]
