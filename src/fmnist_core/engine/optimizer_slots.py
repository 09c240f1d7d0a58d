"""The optimizer's state and update on an engine's own arrays, written once for every backend.

An engine hands ``OptimizerSlots`` its trainable tensors (framework arrays) and, each step,
their gradients; the slots (momentum; Adam's ``m`` and ``v``) are created, updated, named
(``{slot}.{parameter}``) and saved here, with ``fmnist_core.spec.optimizers.Optimizer.update``
as the arithmetic. A framework's arrays are reached through an ``ArrayOps``: four functions.
Functional frameworks (JAX) call ``updated`` directly inside their compiled step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..spec.optimizers import Optimizer


@dataclass(frozen=True)
class ArrayOps:
    """How to reach one framework's arrays: ``zeros_like``, ``read`` (a value to compute with),
    ``write(target, value)`` (in place; ``None`` for immutable arrays such as JAX's, whose
    engine replaces ``OptimizerSlots.values`` with what its step returns), ``sqrt``, and
    ``to_numpy``/``from_numpy`` (``from_numpy(array, like)`` gives an array like ``like``'s)."""

    zeros_like: Callable[[Any], Any]
    read: Callable[[Any], Any]
    write: Callable[[Any, Any], None] | None
    sqrt: Callable[[Any], Any]
    to_numpy: Callable[[Any], np.ndarray]
    from_numpy: Callable[[np.ndarray, Any], Any]


def _numpy_write(target: np.ndarray, value: Any) -> None:
    target[...] = value


NUMPY_OPS = ArrayOps(
    zeros_like=np.zeros_like,
    read=lambda a: a,
    write=_numpy_write,
    sqrt=np.sqrt,
    to_numpy=np.asarray,
    from_numpy=lambda a, like: np.asarray(a, like.dtype),
)


def updated(
    optimizer: Optimizer,
    params: Sequence[Any],
    grads: Sequence[Any],
    slots: Sequence[Sequence[Any]],
    scalars: Sequence[Any],
    sqrt: Callable[[Any], Any],
) -> tuple[list[Any], list[list[Any]]]:
    """One step for every tensor, as values: ``(new params, new slots per param)``."""
    new_params, new_slots = [], []
    for param, grad, state in zip(params, grads, slots, strict=True):
        new, new_state = optimizer.update(param, grad, list(state), scalars, sqrt)
        new_params.append(new)
        new_slots.append(new_state)
    return new_params, new_slots


class OptimizerSlots:
    """``optimizer``'s slots for the tensors ``params`` (named ``names``, neutral), in their
    framework. ``to_neutral(name, array)``/``from_neutral(name, array)`` convert a slot between
    the framework's layout and the neutral one (a slot has its parameter's layout)."""

    def __init__(
        self,
        optimizer: Optimizer,
        names: Sequence[str],
        params: Sequence[Any],
        ops: ArrayOps,
        to_neutral: Callable[[str, np.ndarray], np.ndarray] = lambda name, a: a,
        from_neutral: Callable[[str, np.ndarray], np.ndarray] = lambda name, a: a,
    ):
        self.optimizer, self.names, self.ops = optimizer, list(names), ops
        self.to_neutral, self.from_neutral = to_neutral, from_neutral
        self.values = [[ops.zeros_like(ops.read(p)) for _ in optimizer.slots] for p in params]

    def apply(self, params: Sequence[Any], grads: Sequence[Any], scalars: Sequence[Any]) -> None:
        """One optimizer step: each parameter and its slots written in place."""
        ops = self.ops
        if ops.write is None:
            raise TypeError("immutable arrays: call updated() in the step and replace .values")
        values = [ops.read(p) for p in params]
        slots = [[ops.read(s) for s in state] for state in self.values]
        new_params, new_slots = updated(self.optimizer, values, grads, slots, scalars, ops.sqrt)
        for param, new in zip(params, new_params, strict=True):
            ops.write(param, new)
        for state, new_state in zip(self.values, new_slots, strict=True):
            for slot, new in zip(state, new_state, strict=True):
                ops.write(slot, new)

    def state(self) -> dict[str, np.ndarray]:
        """The slots in the neutral layout, ``{"{slot}.{param}": array}`` (checkpoints)."""
        return {
            f"{slot}.{name}": np.array(self.to_neutral(name, self.ops.to_numpy(value)), np.float32)
            for name, state in zip(self.names, self.values, strict=True)
            for slot, value in zip(self.optimizer.slots, state, strict=True)
        }

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state`` returned."""
        for name, values in zip(self.names, self.values, strict=True):
            for number, (slot, value) in enumerate(zip(self.optimizer.slots, values, strict=True)):
                array = self.ops.from_numpy(
                    self.from_neutral(name, np.asarray(state[f"{slot}.{name}"], np.float32)), value
                )
                if self.ops.write is None:
                    values[number] = array
                else:
                    self.ops.write(value, array)
