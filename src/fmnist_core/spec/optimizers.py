"""Optimizers and learning-rate schedules, written once for every backend.

The core computes, for every step, the optimizer's per-step scalars (the scheduled learning
rate, Adam's bias corrections folded in) and hands them to the engine with each block as a
``(k, len(optimizer.columns))`` float32 array. The engine applies ``Optimizer.update`` to its own
tensors: the update is plain arithmetic (``+ - * /`` and a ``sqrt`` the engine passes), so NumPy
arrays, torch tensors and TensorFlow tensors all run the same formula.

Formulas (PyTorch's conventions; ``g`` the gradient, ``p`` the parameter):

* SGD: ``g += wd·p``; with momentum ``b = μ·b + g`` and ``g = b`` (Nesterov: ``g += μ·b``);
  ``p -= lr·g``.
* Adam: ``g += wd·p``; ``m = β1·m + (1-β1)·g``; ``v = β2·v + (1-β2)·g²``;
  ``p -= lr·m̂ / (√v̂ + ε)`` with the bias-corrected ``m̂, v̂``.
* AdamW: ``p ·= 1 - lr·wd`` (decoupled), then Adam without ``wd`` in the gradient.

Optimizer slots (``momentum``; ``m``, ``v``) are saved in checkpoints as
``optimizer.{slot}.{parameter}`` in the neutral layout, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")


def _finite(obj: Any, names: tuple[str, ...]) -> None:
    """Each of ``names`` a finite real number (a value read from a file may be anything)."""
    for name in names:
        value = getattr(obj, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
        ):
            raise ConfigError(
                f"{type(obj).__name__.lower()} {name} must be a finite number, got "
                f"{str(value)[:40]!r}",
                fix=f"use the default {name}={getattr(type(obj), name)!r}",
            )


@dataclass(frozen=True)
class Optimizer:
    """``Optimizer("sgd", momentum=0.9, nesterov=True, weight_decay=5e-4)``, ``Optimizer("adam")``,
    ``Optimizer("adamw", weight_decay=0.01)``. The learning rate comes from the schedule."""

    kind: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        if self.kind not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.kind!r}; known: {', '.join(OPTIMIZERS)}",
                fix="pick one of those",
            )
        _finite(self, ("momentum", "weight_decay", "beta1", "beta2", "eps"))
        if not isinstance(self.nesterov, bool):
            raise ConfigError(
                f"optimizer nesterov must be true or false, got {str(self.nesterov)[:40]!r}",
                fix="pass nesterov=True or False",
            )
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"optimizer {name} must be a number ≥ 0, got {value!r}",
                    fix=f"use e.g. {name}=0.9",
                )
        if self.kind != "sgd" and (self.momentum or self.nesterov):
            raise ConfigError(
                f"momentum/nesterov are SGD options; {self.kind} has beta1/beta2",
                fix="drop momentum, or use optimizer='sgd'",
            )
        if self.nesterov and not self.momentum:
            raise ConfigError("nesterov=True needs momentum > 0", fix="pass momentum=0.9, say")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ConfigError(
                f"beta1, beta2 must be in [0, 1) and eps > 0, got {self.beta1}, {self.beta2}, "
                f"{self.eps}",
                fix="use the defaults 0.9, 0.999, 1e-8",
            )

    @property
    def slots(self) -> tuple[str, ...]:
        """Per-parameter state tensors, zero at the start."""
        if self.kind == "sgd":
            return ("momentum",) if self.momentum else ()
        return ("m", "v")

    @property
    def columns(self) -> tuple[str, ...]:
        """The per-step scalars ``step_scalars`` computes and ``update`` reads, in order."""
        return {
            "sgd": ("lr",),
            "adam": ("step_size", "eps"),
            "adamw": ("step_size", "eps", "decay"),
        }[self.kind]

    @property
    def is_plain_sgd(self) -> bool:
        """No momentum, no weight decay: engines may use a fused fast path."""
        return self.kind == "sgd" and not self.momentum and not self.weight_decay

    def step_scalars(self, learning_rates: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Per-step scalars (k, columns) for learning rates (k,) at 1-based global ``steps``."""
        lr = np.asarray(learning_rates, np.float64)
        if self.kind == "sgd":
            return lr[:, None].astype(np.float32)
        t = np.asarray(steps, np.float64)
        correction1, correction2 = 1 - self.beta1**t, 1 - self.beta2**t
        columns = [lr * np.sqrt(correction2) / correction1, self.eps * np.sqrt(correction2)]
        if self.kind == "adamw":
            columns.append(lr * self.weight_decay)
        return np.stack(columns, axis=1).astype(np.float32)

    def update(
        self,
        param: Any,
        grad: Any,
        slots: Sequence[Any],
        scalars: Sequence[Any],
        sqrt: Callable[[Any], Any],
    ) -> tuple[Any, list[Any]]:
        """One step for one tensor: ``(new_param, new_slots)``. Works on any array type."""
        if self.kind == "sgd":
            (lr,) = scalars[:1]
            if self.weight_decay:
                grad = grad + self.weight_decay * param
            if not self.momentum:
                return param - lr * grad, []
            buffer = self.momentum * slots[0] + grad
            step = grad + self.momentum * buffer if self.nesterov else buffer
            return param - lr * step, [buffer]
        step_size, eps = scalars[0], scalars[1]
        if self.kind == "adamw":
            param = param * (1 - scalars[2])
        elif self.weight_decay:
            grad = grad + self.weight_decay * param
        m = self.beta1 * slots[0] + (1 - self.beta1) * grad
        v = self.beta2 * slots[1] + (1 - self.beta2) * (grad * grad)
        return param - step_size * m / (sqrt(v) + eps), [m, v]

    def to_dict(self) -> dict[str, Any]:
        return _non_default(self)


@dataclass(frozen=True)
class Schedule:
    """Learning rate per step: ``constant``; ``step`` (× ``gamma`` every ``step_epochs``);
    ``cosine`` (to ``min_fraction`` × lr at the end); ``onecycle`` (PyTorch's OneCycleLR with
    cosine annealing: from lr/``div_factor`` up to lr over ``pct_start`` of the run, then down to
    lr/(``div_factor``·``final_div_factor``))."""

    kind: str = "constant"
    step_epochs: int = 1
    gamma: float = 0.1
    min_fraction: float = 0.0
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.kind!r}; known: {', '.join(SCHEDULES)}",
                fix="pick one of those",
            )
        _finite(self, ("gamma", "min_fraction", "pct_start", "div_factor", "final_div_factor"))
        if self.gamma <= 0 or not 0 <= self.min_fraction <= 1:
            raise ConfigError(
                f"schedule needs gamma > 0 and 0 ≤ min_fraction ≤ 1, got {self.gamma!r}, "
                f"{self.min_fraction!r}",
                fix="use the defaults gamma=0.1, min_fraction=0",
            )
        if not 0 < self.pct_start < 1 or self.div_factor <= 0 or self.final_div_factor <= 0:
            raise ConfigError(
                "onecycle needs 0 < pct_start < 1 and positive div factors",
                fix="use the defaults pct_start=0.3, div_factor=25, final_div_factor=1e4",
            )
        if (
            isinstance(self.step_epochs, bool)
            or not isinstance(self.step_epochs, int)
            or self.step_epochs < 1
        ):
            raise ConfigError(
                f"step_epochs must be an integer ≥ 1, got {self.step_epochs!r}",
                fix="pass step_epochs=1 or more",
            )

    def rates(
        self, base: float, steps: np.ndarray, steps_per_epoch: int, total_steps: int
    ) -> np.ndarray:
        """Learning rates (float64) at 0-based global ``steps`` of a run of ``total_steps``."""
        t = np.asarray(steps, np.float64)
        if self.kind == "constant":
            return np.full(t.shape, base)
        if self.kind == "step":
            return base * self.gamma ** (t // (steps_per_epoch * self.step_epochs))
        if self.kind == "cosine":
            low = base * self.min_fraction
            return (
                low
                + (base - low) * (1 + np.cos(np.pi * np.minimum(t / max(total_steps, 1), 1.0))) / 2
            )
        start = base / self.div_factor
        end = start / self.final_div_factor
        peak_step = float(self.pct_start * total_steps) - 1
        last_step = float(total_steps - 1)

        def anneal(high, low, fraction):
            return low + (high - low) / 2 * (np.cos(np.pi * fraction) + 1)

        rising = anneal(start, base, t / max(peak_step, 1e-12))
        falling = anneal(base, end, (t - peak_step) / max(last_step - peak_step, 1e-12))
        return np.where(t <= peak_step, rising, falling)

    def to_dict(self) -> dict[str, Any]:
        return _non_default(self)


def as_optimizer(value: Any) -> Optimizer:
    """An ``Optimizer`` from a name, a dict (as recorded in run configs) or an ``Optimizer``."""
    return _coerce(Optimizer, value, "optimizer", OPTIMIZERS)


def as_schedule(value: Any) -> Schedule:
    """A ``Schedule`` from a name, a dict or a ``Schedule``."""
    return _coerce(Schedule, value, "schedule", SCHEDULES)


def _coerce(cls, value: Any, what: str, names: tuple[str, ...]):
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        return cls(value)
    if isinstance(value, dict):
        try:
            return cls(**value)
        except TypeError as exc:
            raise ConfigError(
                f"bad {what} {value!r}: {exc}", fix=f"see fmnist_core.{cls.__name__}"
            ) from None
    raise ConfigError(
        f"{what} must be a name ({', '.join(names)}) or a{'n' if what[0] in 'aeiou' else ''} "
        f"{cls.__name__}, got {value!r}"
    )


def _non_default(obj) -> dict[str, Any]:
    """``kind`` and the fields that differ from their defaults (what run configs record)."""
    return {k: v for k, v in asdict(obj).items() if k == "kind" or v != getattr(type(obj), k)}
