"""The loss, written once for every backend: cross-entropy with label smoothing,

    loss = (1 - ε) · (logsumexp(z) - z_y) + ε · (logsumexp(z) - mean(z)),

per sample (``z`` the logits, ``y`` the label, ε ``label_smoothing``): the target
(1 - ε) · one-hot + ε / classes, as PyTorch's and Keras' ``label_smoothing``. A backend reaches
its arrays through ``LossOps`` (three functions) and differentiates the result with its own
autograd; the NumPy reference differentiates it by hand (``gradient``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LossOps:
    """How to reach one framework's logits ``(n, classes)``: ``logsumexp`` and ``mean`` over the
    classes of each row, and ``pick(logits, labels)``, each row's logit of its label."""

    logsumexp: Callable[[Any], Any]
    mean: Callable[[Any], Any]
    pick: Callable[[Any, Any], Any]


def per_sample_loss(logits: Any, labels: Any, smoothing: float, ops: LossOps) -> Any:
    """Each sample's loss (``(n,)``, the framework's array)."""
    total = ops.logsumexp(logits)
    loss = total - ops.pick(logits, labels)
    if smoothing:
        loss = (1 - smoothing) * loss + smoothing * (total - ops.mean(logits))
    return loss


def _numpy_logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1)
    return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))


NUMPY_LOSS = LossOps(
    logsumexp=_numpy_logsumexp,
    mean=lambda logits: logits.mean(axis=1),
    pick=lambda logits, labels: logits[np.arange(len(labels)), labels],
)


def gradient(logits: np.ndarray, labels: np.ndarray, smoothing: float) -> np.ndarray:
    """d(mean loss)/d(logits) in NumPy: softmax minus the smoothed target, over the batch."""
    batch, classes = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    if smoothing:
        probs -= np.float32(smoothing / classes)
    probs[np.arange(batch), labels] -= np.float32(1.0 - smoothing)
    probs *= np.float32(1.0 / batch)
    return probs
