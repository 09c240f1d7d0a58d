"""Keras on torch: fmnist-torch's public autograd step on the Keras variables' tensors."""

from __future__ import annotations

import numpy as np

from fmnist_core import StepResult
from fmnist_core.plugin_api import OptimizerSlots

from .engine import KerasEngine, torch_steps


class KerasTorchEngine(KerasEngine):
    """Keras on torch: fmnist-torch's autograd step on the Keras variables' torch tensors."""

    def __init__(self, config, keras):
        super().__init__(config, keras)
        import torch

        self.torch = torch
        ops, self._autograd_steps = torch_steps()
        self.torch_device = keras.src.backend.torch.core.get_device()
        self.tensors = [v.value for v in self.variables]
        self.slots = OptimizerSlots(self.optimizer, self.spec.trainable(), self.tensors, ops)
        self.fused = (
            self.spec.is_two_layer_perceptron()
            and self.optimizer.is_plain_sgd
            and self.precision == "float32"
        )

    def attach(self, images, labels):
        torch = self.torch
        self.images = torch.from_numpy(np.array(images, np.uint8)).to(self.torch_device)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64)).to(self.torch_device)

    def _logits(self, x):
        # Calling the Keras model costs ~2 ms per step on the torch backend (layer dispatch), so
        # the article's MLP runs the same Dense math on the model's own torch tensors (about 6×
        # faster per epoch, measured)
        if self.fused:
            kernel1, bias1, kernel2, bias2 = self.tensors
            return self.torch.addmm(
                bias2, self.torch.addmm(bias1, x.flatten(1), kernel1).relu(), kernel2
            )
        return self.model(x, training=True)

    def train_steps(self, batches, scalars):
        self.require_attached()
        index = self.torch.from_numpy(np.ascontiguousarray(batches, np.int64)).to(self.torch_device)
        rows = np.asarray(scalars, np.float64).tolist()
        losses, correct = self._autograd_steps(
            self._logits,
            self.tensors,
            self.slots,
            self.images,
            self.labels,
            index,
            rows,
            label_smoothing=self.label_smoothing,
        )
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    def logits(self, images):
        torch = self.torch
        with torch.no_grad():
            x = (
                torch.from_numpy(np.array(images, np.uint8))
                .to(self.torch_device)
                .to(torch.float32)
                .div_(255.0)
            )
            return self.model(x, training=False).float().cpu().numpy()
