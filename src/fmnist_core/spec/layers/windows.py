"""Strided windows of channels-last batches, shared by the NumPy references of convolution and
pooling (a helper module: it defines no layer)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(N, Ho, Wo, C, size, size) strided windows of (N, H, W, C)."""
    return sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
