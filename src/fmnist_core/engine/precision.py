"""The arithmetic a run computes in: the ``precision`` setting resolved for a backend and CPU.

``float32`` is exact: every backend takes the same steps as the NumPy reference. ``bfloat16``
keeps float32 weights, optimizer and loss and runs the matmuls and convolutions in bfloat16
(torch's ``autocast``), which a CPU with AMX or AVX512-BF16 runs several times faster (BENCHMARKS,
"The compute floor"); elsewhere it is emulated and slower. ``auto`` is ``bfloat16`` only where
the backend has it and the CPU runs it natively.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import ConfigError

PRECISIONS = ("float32", "bfloat16", "auto")
NATIVE_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
"""``/proc/cpuinfo`` flags of CPUs that compute bfloat16 natively (Intel AMX, AVX512-BF16)."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere, or unreadable)."""
    try:
        with Path("/proc/cpuinfo").open(encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (``NATIVE_BFLOAT16_FLAGS``)."""
    return any(flag in cpu_flags() for flag in NATIVE_BFLOAT16_FLAGS)


def resolve_precision(
    wanted: str, backend_name: str, offered: tuple[str, ...], pays: bool = True
) -> str:
    """``wanted`` (a ``PRECISIONS`` value) as the arithmetic the backend, which computes in
    ``offered``, is to use here: ``"float32"`` or ``"bfloat16"``. ``pays``: whether bfloat16
    was measured faster on this backend's configuration (``Backend.bfloat16_pays``)."""
    if wanted == "auto":
        native = "bfloat16" in offered and pays and native_bfloat16()
        return "bfloat16" if native else "float32"
    if wanted not in offered:
        others = "float32 only" if offered == ("float32",) else ", ".join(offered)
        raise ConfigError(
            f"the {backend_name} backend computes in {others}, not precision={wanted!r}",
            fix="use precision='float32' (or 'auto'), or a backend with bfloat16: torch",
        )
    return wanted
