"""Lowering tables: how a backend builds each layer type in its framework.

A backend's plugin registers, through the ``fmnist_lowerings`` hook, a ``Lowerings(backend,
module)``; that module (imported only when an engine is built, so it may import the framework)
defines ``LOWERINGS``, a ``LoweringTable``::

    LOWERINGS = LoweringTable("torch")

    @LOWERINGS.layer("Dense")
    def dense(layer, shape, ctx):           # every backend's builders: (layer, shape, ctx) ->
        return nn.Linear(shape[0], layer.units)   # a callable from the input tensor to the output

    LOWERINGS.layout("dense", to_framework=transpose, to_neutral=transpose)

    @LOWERINGS.text("Dense")                # its text in the program ``fmnist eject`` writes
    def dense_text(layer, shape, lines, x):  # (``fmnist_core.engine.ejection``)
        lines.forward(f"{x} = {lines.attribute(layer)}({x})")

A plugin that adds a layer type registers a ``Lowerings`` for each backend it supports; the
backend's table is the union of all of them. A layer type no table lowers is an error naming it
and the backends that do (``table.builder``), never a skipped layer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BackendError


@dataclass(frozen=True)
class Lowerings:
    """What ``fmnist_lowerings`` returns: ``module`` holds ``LOWERINGS``, a ``LoweringTable``
    for ``backend``."""

    backend: str
    module: str
    attribute: str = "LOWERINGS"

    def load(self) -> LoweringTable:
        table = getattr(importlib.import_module(self.module), self.attribute)
        if not isinstance(table, LoweringTable) or table.backend != self.backend:
            raise BackendError(
                f"{self.module}.{self.attribute} is not a LoweringTable for backend "
                f"{self.backend!r}",
                fix="define LOWERINGS = LoweringTable(backend) in that module",
            )
        return table


@dataclass
class LoweringTable:
    """Layer type → builder, and neutral layout → conversion to and from the framework's."""

    backend: str
    builders: dict[str, Callable] = field(default_factory=dict)
    layouts: dict[str, tuple[Callable, Callable]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # layer type → the module that lowers it
    texts: dict[str, Callable] = field(default_factory=dict)  # layer type → its ejected text

    def layer(self, kind: str) -> Callable[[Callable], Callable]:
        """Decorator: the function builds layer type ``kind``."""

        def register(builder: Callable) -> Callable:
            self.builders[kind] = builder
            return builder

        return register

    def text(self, kind: str) -> Callable[[Callable], Callable]:
        """Decorator: the function writes layer type ``kind`` into the framework's ejected
        program: ``(layer, shape, lines, x)``, ``lines`` a ``ProgramLines``."""

        def register(writer: Callable) -> Callable:
            self.texts[kind] = writer
            return writer

        return register

    def layout(
        self,
        name: str,
        to_framework: Callable[[np.ndarray], np.ndarray],
        to_neutral: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """How tensors of neutral layout ``name`` (``fmnist_core.spec.layer.LAYOUTS``) are laid
        out in this framework; a layout not named here is the same in both."""
        self.layouts[name] = (to_framework, to_neutral)

    def builder(self, layer: Any) -> Callable:
        """The builder of ``layer``'s type; a ``BackendError`` naming it when there is none."""
        try:
            return self.builders[layer.kind]
        except KeyError:
            raise missing_lowering(self.backend, layer.kind) from None

    def apply(self, layers, x, shape, ctx):
        """The stack ``layers`` applied to ``x`` of neutral ``shape``, each built and applied in
        turn (for backends that build while tracing), counting ``ctx.index``."""
        for layer in layers:
            x = self.builder(layer)(layer, shape, ctx)(x)
            ctx.index += 1
            shape = layer.output_shape(shape)
        return x

    def to_framework(self, layout: str, value: np.ndarray) -> np.ndarray:
        convert = self.layouts.get(layout)
        return np.ascontiguousarray(convert[0](value)) if convert else value

    def to_neutral(self, layout: str, value: np.ndarray) -> np.ndarray:
        convert = self.layouts.get(layout)
        return np.ascontiguousarray(convert[1](value)) if convert else value

    def merged(self, other: LoweringTable, module: str) -> None:
        for mine, theirs, what in ((self.builders, other.builders, "lowered"),
                                   (self.texts, other.texts, "written as text")):  # fmt: skip
            for kind, function in theirs.items():
                if kind in mine and mine[kind] is not function:
                    raise BackendError(
                        f"layer type {kind!r} is {what} for backend {self.backend!r} twice "
                        f"({self.sources.get(kind, 'a plugin')} and {module})",
                        fix="uninstall one of the two plugins",
                    )
                mine[kind] = function
                self.sources.setdefault(kind, module)
        self.layouts.update(other.layouts)


_tables: dict[tuple, LoweringTable] = {}


def lowering_table(backend: str) -> LoweringTable:
    """The union of every registered lowering table for ``backend`` (imports their modules).
    Cached for the registered ``Lowerings`` of the moment, so a plugin registered later counts."""
    from .. import plugins

    entries = tuple(entry for entry in plugins.lowerings() if entry.backend == backend)
    key = (backend, entries)
    if key not in _tables:
        table = LoweringTable(backend)
        for entry in entries:
            table.merged(entry.load(), entry.module)
        _tables[key] = table
    return _tables[key]


def missing_lowering(backend: str, kind: str) -> BackendError:
    """The error for a layer type ``backend`` cannot build, naming the backends that can."""
    from .. import plugins

    able = sorted(
        {
            entry.backend
            for entry in plugins.lowerings()
            if entry.backend != backend and kind in _safe_kinds(entry)
        }
    )
    elsewhere = f"; backends that lower it: {', '.join(able)}" if able else ""
    return BackendError(
        f"the {backend} backend has no lowering for layer type {kind!r}{elsewhere}",
        fix="install the plugin that lowers it for this backend, or use another backend",
    )


def _safe_kinds(entry: Lowerings) -> set[str]:
    try:
        return set(entry.load().builders)
    except Exception:  # another backend's framework may be missing: it then lowers nothing here
        return set()
