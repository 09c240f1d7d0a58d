"""Guards for frameworks sharing one process."""

from __future__ import annotations

import sys


def block_triton_after_tensorflow() -> None:
    """Make ``import triton`` fail cleanly once TensorFlow is loaded.

    triton's native library segfaults when it is loaded after TensorFlow's (seen with torch 2.14
    and TensorFlow 2.21), and torch imports it lazily (``torch.optim``, ``torchvision.ops``,
    ``torch.compile``). With this guard torch sees no triton and uses its CPU paths instead of
    crashing the process. Called by the TensorFlow-based backends right after importing TF.
    """
    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # import triton -> ImportError
