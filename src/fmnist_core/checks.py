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


def _bounds(low: str | None, high: str | None, closed_low: bool, closed_high: bool) -> str:
    if low is not None and high is not None:
        return f" in {'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
    if low is not None:
        return f" {'≥' if closed_low else '>'} {low}"
    if high is not None:
        return f" {'≤' if closed_high else '<'} {high}"
    return ""


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str, Any], int]:
    """An integer (not a bool) in ``minimum..maximum`` (either end open when None)."""

    def check(name: str, value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            if minimum is not None and maximum is not None:
                bounds = f" in {minimum}..{maximum}"
            else:
                bounds = _bounds(_text(minimum), _text(maximum), True, True)
            least = max(minimum, 1) if minimum is not None else 1
            raise ConfigError(
                f"{name} must be an integer{bounds}, got {_shown(value)}",
                fix=f"pass {name}={least}" + (" or more" if maximum is None else ""),
            )
        return int(value)

    return check


def number(
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> Callable[[str, Any], float]:
    """A finite number (not a bool) within the bounds given (``minimum``/``maximum``
    inclusive, ``above``/``below`` exclusive)."""

    def check(name: str, value: Any) -> float:
        ok = (
            not isinstance(value, bool)
            and isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value)
            and (minimum is None or value >= minimum)
            and (above is None or value > above)
            and (maximum is None or value <= maximum)
            and (below is None or value < below)
        )
        if not ok:
            low = minimum if minimum is not None else above
            high = maximum if maximum is not None else below
            bounds = _bounds(_text(low), _text(high), minimum is not None, maximum is not None)
            raise ConfigError(f"{name} must be a number{bounds}, got {_shown(value)}")
        return float(value)

    return check


def boolean(name: str, value: Any) -> bool:
    """True or False (NumPy's too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(
            f"{name} must be true or false, got {_shown(value)}", fix=f"pass {name}=True or False"
        )
    return bool(value)


def one_of(*choices: Any, pattern: str = "") -> Callable[[str, Any], Any]:
    """One of ``choices``, or a text that matches the regular expression ``pattern``."""
    import re

    def check(name: str, value: Any) -> Any:
        matches = pattern and isinstance(value, str) and re.fullmatch(pattern, value)
        if value not in choices and not matches:
            also = f" (or text matching {pattern})" if pattern else ""
            raise ConfigError(
                f"{name} must be one of {', '.join(map(str, choices))}{also}, got {_shown(value)}"
            )
        return value

    return check


def text(name: str, value: Any) -> str:
    """Any text."""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be text, got {_shown(value)}")
    return value


def declared(
    kind: type,
    *,
    choices: tuple[Any, ...] = (),
    pattern: str = "",
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> Callable[[str, Any], Any]:
    """The check of a value declared by its type and bounds: what a layer's hyper-parameter
    (``hyper``) and a backend's ``Option`` are checked with, as settings are."""
    if kind is bool:
        return boolean
    if kind is int:
        low = (
            minimum
            if minimum is not None
            else (math.floor(above) + 1 if above is not None else None)
        )
        high = (
            maximum
            if maximum is not None
            else (math.ceil(below) - 1 if below is not None else None)
        )
        return integer(None if low is None else int(low), None if high is None else int(high))
    if kind is float:
        return number(minimum=minimum, above=above, maximum=maximum, below=below)
    if choices or pattern:
        return one_of(*choices, pattern=pattern)
    return text


def count_or_fraction(name: str, value: Any) -> int | float | None:
    """None (or 0), a fraction in (0, 1) or a count ≥ 1."""
    if value is None or value == 0:
        return None
    if isinstance(value, float) and 0 < value < 1:
        return value
    return integer(1)(name, value)


def _text(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
