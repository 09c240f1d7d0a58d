"""The plugin hooks. A plugin is a module registered under the entry-point group ``fmnist``.

Each hook returns a list of typed objects that the core looks up by name; the core collects the
lists of every plugin (fmnist's own built-ins included). Implement a hook with
``@fmnist_core.hookimpl``. Returning them must import no framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # the types are defined above this module, which they import: for type
    # checkers only (import-linter leaves these out; at run time they would be a cycle)
    from .engine.backend import Backend
    from .engine.ejection import Ejections
    from .engine.lowering import Lowerings
    from .io.exports import ExportTarget
    from .io.weights import WeightFormat
    from .plugins import Command
    from .spec.layer import Layer
    from .spec.model import ModelSpec

hookspec = pluggy.HookspecMarker("fmnist")
hookimpl = pluggy.HookimplMarker("fmnist")


@hookspec
def fmnist_backends() -> list[Backend]:  # type: ignore[empty-body]
    """Return ``fmnist_core.Backend`` objects: backends looked up by ``Backend.name``.

    The framework is imported by ``Backend.create_engine``, never here.
    """


@hookspec
def fmnist_models() -> list[ModelSpec]:  # type: ignore[empty-body]
    """Return ``fmnist_core.ModelSpec`` recipes, looked up by name (``Trainer(model=...)``)."""


@hookspec
def fmnist_weight_formats() -> list[WeightFormat]:  # type: ignore[empty-body]
    """Return ``fmnist_core.WeightFormat`` objects: files this plugin reads or writes.

    A format converts between its files and the neutral layout, so that any backend can load
    weights saved by any other and ``fmnist convert`` can move them between formats.
    """


@hookspec
def fmnist_export_targets() -> list[ExportTarget]:  # type: ignore[empty-body]
    """Return ``fmnist_core.ExportTarget`` objects: deployable artifacts (``fmnist export
    --format NAME``), each run by its own runtime and gated on the test set before it is kept."""


@hookspec
def fmnist_layers() -> list[type[Layer]]:  # type: ignore[empty-body]
    """Return ``fmnist_core.Layer`` subclasses: layer types a ``ModelSpec`` may use, by ``kind``.

    A layer type holds its parameters and their layouts, its shape rule, its NumPy reference
    maths and its ONNX lowering; each training backend lowers it through ``fmnist_lowerings``.
    """


@hookspec
def fmnist_lowerings() -> list[Lowerings]:  # type: ignore[empty-body]
    """Return ``fmnist_core.Lowerings``: for one backend, a module whose ``LOWERINGS`` table
    builds layer types in that backend's framework (imported when an engine is built)."""


@hookspec
def fmnist_ejections() -> list[Ejections]:  # type: ignore[empty-body]
    """Return ``fmnist_core.Ejections``: for one framework, a module whose ``EJECTION`` table
    writes layer types (and, from the framework's own plugin, the program) as ``fmnist eject``'s
    text (imported when a program is written)."""


@hookspec
def fmnist_commands() -> list[Command]:  # type: ignore[empty-body]
    """Return ``fmnist_core.Command`` objects: subcommands of the ``fmnist`` command line."""
