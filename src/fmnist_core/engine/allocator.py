"""The C allocator, set for training: steps free and allocate the same large buffers each time.

glibc's ``malloc`` hands every block above a threshold (128 KiB, raised as blocks are freed) to
the kernel with ``mmap`` and gives it back with ``munmap``, so each step's activations come as
fresh pages that fault in zeroed: on the 2-core Xeon of BENCHMARKS.md ("The compute floor") a
fifth of `fast`'s epoch on torch was kernel time (3.2 s of 14 s), gone with the settings below
(0.35 s; 5.7 → 4.6 s an epoch; peak memory +5%). Blocks up to 32 MiB now come from malloc's own
heap, and up to 256 MiB of freed heap is kept for the next step instead of being returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20
OPT_OUT = "FMNIST_KEEP_MALLOC"
"""Set to 1 to leave the C allocator as it was (fmnist then changes nothing process-wide)."""

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's malloc for training (the module's docstring), once per process; whether it
    is set. Nothing changes off Linux, with another C library, or with ``FMNIST_KEEP_MALLOC=1``."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux") and os.environ.get(OPT_OUT) != "1":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and others: no mallopt
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _applied = bool(
                mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
    return _applied
