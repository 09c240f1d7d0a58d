"""Checks of values given to fmnist (settings, and any other declared value): each takes the
value's name and the value, and returns the valid value or raises a one-line ``ConfigError``
naming both. ``TrainConfig``'s settings are declared with them (``training.config``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ConfigError

MAX_LEARNING_RATE = 1e32
"""Engines compute in float32 (largest 3.4e38): a learning rate above this overflows on its way
to them (a warning, then infinities) and cannot train."""


def integer(minimum: int, maximum: int | None = None) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            bounds = f"in {minimum}..{maximum}" if maximum is not None else f"≥ {minimum}"
            raise ConfigError(
                f"{name} must be an integer {bounds}, got {value!r}",
                fix=f"pass {name}={max(minimum, 1)} or more",
            )
        return int(value)

    return check


def number(*, above: float | None = None, below: float | None = None, minimum: float = -math.inf):
    def check(name: str, value: Any) -> float:
        ok = (
            not isinstance(value, bool)
            and isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value)
            and value >= minimum
            and (above is None or value > above)
            and (below is None or value < below)
        )
        if not ok:
            opening = f"({above:g}" if above is not None else f"[{minimum:g}"
            low = f"> {above:g}" if above is not None else f"≥ {minimum:g}"
            bounds = f"in {opening}, {below:g})" if below is not None else low
            raise ConfigError(f"{name} must be a number {bounds}, got {value!r}")
        return float(value)

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(
            f"{name} must be true or false, got {value!r}", fix=f"pass {name}=True or False"
        )
    return bool(value)


def one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def count_or_fraction(name: str, value: Any) -> int | float | None:
    if value is None or value == 0:
        return None
    if isinstance(value, float) and 0 < value < 1:
        return value
    return integer(1)(name, value)
