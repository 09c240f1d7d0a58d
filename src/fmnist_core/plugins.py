"""Plugin discovery and lookup by name.

Plugins are modules registered under the entry-point group ``fmnist``; fmnist's own built-ins
are registered the same way (``DEFAULT_PLUGINS``). A plugin that fails to import is recorded with
its reason (``fmnist backends`` shows it) and the others keep working.

Environment: ``FMNIST_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points (only the built-ins);
``FMNIST_PLUGINS=torch,tf`` loads only the named entry points.

This module sits at the bottom of the package (it imports only ``hookspecs`` and ``errors``),
so that every layer above can look things up.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import BackendError, ConfigError

if TYPE_CHECKING:  # the types it holds are defined above it, which import it: for type
    # checkers only (import-linter leaves these out; at run time they would be a cycle)
    from .engine.backend import Backend
    from .engine.ejection import Ejections
    from .engine.lowering import Lowerings
    from .io.exports import ExportTarget
    from .io.weights import WeightFormat
    from .spec.layer import Layer
    from .spec.model import ModelSpec

ENTRY_POINT_GROUP = "fmnist"
DEFAULT_PLUGINS = (
    "fmnist_core.builtin.layers",
    "fmnist_core.builtin.recipes",
    "fmnist_core.builtin.formats",
    "fmnist_core.builtin.numpy_backend",
    "fmnist_core.builtin.commands",
)


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that could not be loaded, and why."""

    name: str
    value: str
    error: str


@dataclass(frozen=True)
class Command:
    """A subcommand of ``fmnist``: ``module`` defines ``add_arguments(parser)`` and
    ``run(args) -> int`` (imported when the command line is built), as the built-in ones do."""

    name: str
    help: str
    module: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        importlib.import_module(self.module).add_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        return int(importlib.import_module(self.module).run(args))


def load_on_call(module: str, name: str) -> Callable[..., Any]:
    """A function that imports ``module`` and calls its ``name`` when it is called: plugins
    register formats without importing their framework
    (``read=load_on_call("fmnist_tf.formats", "read_checkpoint")``)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


_manager: pluggy.PluginManager | None = None
_failures: list[PluginFailure] = []


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first use."""
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager("fmnist")
        manager.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            manager.register(importlib.import_module(module_name), name=module_name)
        _failures.clear()
        if not os.environ.get("FMNIST_DISABLE_PLUGIN_AUTOLOAD"):
            _load_entry_points(manager)
        _manager = manager
    return _manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    only = os.environ.get("FMNIST_PLUGINS")
    allowed = {n.strip() for n in only.split(",") if n.strip()} if only else None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if manager.get_plugin(ep.name) is not None:
            continue
        try:
            register_checked(manager, ep.load(), ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            _failures.append(PluginFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))


def register_checked(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin`` and validate its hooks now: a wrong signature (``register``) or a
    misspelt ``fmnist_*`` hook (``check_pending``) raises, and the plugin is left out, instead of
    pluggy skipping it silently until the hook is called."""
    manager.register(plugin, name=name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError:
        manager.unregister(plugin)
        raise


def reset() -> None:
    """Forget loaded plugins (tests use it after changing the environment)."""
    global _manager
    _manager = None
    _failures.clear()
    _target_failures.clear()


def plugin_failures() -> list[PluginFailure]:
    """Entry points that failed to load, and plugins whose export targets were left out."""
    get_plugin_manager()
    export_targets()  # checks each plugin's targets, recording the broken ones
    broken = [PluginFailure(name, "export targets", why) for name, why in _target_failures.items()]
    return list(_failures) + broken


def _collect(hook: Any) -> list[Any]:
    return [item for items in hook() for item in (items or [])]


def backends() -> dict[str, Backend]:
    """Registered backends by name, available or not."""
    return {b.name: b for b in _collect(get_plugin_manager().hook.fmnist_backends)}


def models() -> dict[str, ModelSpec]:
    """Registered model recipes by name."""
    return {m.name: m for m in _collect(get_plugin_manager().hook.fmnist_models)}


def weight_formats() -> dict[str, WeightFormat]:
    """Registered weight formats by name (the neutral one first)."""
    return {f.name: f for f in _collect(get_plugin_manager().hook.fmnist_weight_formats)}


BUILT_IN_TARGETS = {
    "fmnist-core[onnx]": ("onnx", "onnx-int8", "web"),
    "fmnist-core[torch]": ("torch-export",),
    "fmnist-core[tf]": ("litert",),
}
"""The export targets fmnist's own plugins register, by the extra that installs each: the one
place their names are written, for the hint when one is not installed (the installed ones come
from the registry, ``export_targets()``)."""
BUILT_IN_PACKAGES = ("fmnist_core", "fmnist_torch", "fmnist_tf", "fmnist_keras", "fmnist_onnx")
"""The packages of fmnist's own plugins: their export targets' names and suffixes are reserved."""
_target_failures: dict[str, str] = {}


def _isolated(hook: Any) -> list[tuple[str, bool, Any]]:
    """(plugin name, built in, item) for each item each implementation of ``hook`` returns; an
    implementation that raises, or returns something not a list, is recorded as a failure of
    its plugin (``plugin_failures``) and left out, as a plugin that fails to import is."""
    manager = get_plugin_manager()
    found = []
    for impl in hook.get_hookimpls():
        name = manager.get_name(impl.plugin) or repr(impl.plugin)
        module = getattr(impl.plugin, "__name__", type(impl.plugin).__module__)
        built_in = str(module).split(".")[0] in BUILT_IN_PACKAGES
        try:
            items = impl.function()
            if items is not None and not isinstance(items, (list, tuple)):
                raise TypeError(f"returned {type(items).__name__}, not a list")
        except Exception as exc:  # a broken plugin must not take the others down
            _target_failures[name] = f"{type(exc).__name__}: {str(exc)[:120]}"
            continue
        found += [(name, built_in, item) for item in items or ()]
    return found


def _target_problem(
    target: Any, reserved_names: set[str], reserved_suffixes: set[str]
) -> str | None:
    # the registry sits below io/ (import-linter): an ExportTarget is known by its class name
    if type(target).__name__ != "ExportTarget" or not hasattr(target, "unavailable_reason"):
        return f"gave {type(target).__name__}, not an ExportTarget"
    name, suffix, requires = target.name, target.suffix, target.requires
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 40
        or not all(c.isalnum() or c in "-_" for c in name)
    ):
        return f"a target named {str(name)[:40]!r} (names are letters, digits, '-', '_')"
    if not isinstance(suffix, str) or not (
        (suffix.startswith(".") and len(suffix) > 1 and "/" not in suffix)
        or suffix == "/"
        or (suffix.endswith("/") and "/" not in suffix[:-1])
    ):
        return f"target {name!r} has suffix {str(suffix)[:40]!r} (a '.suffix', or a folder '/')"
    if not isinstance(requires, tuple) or not all(isinstance(m, str) for m in requires):
        return f"target {name!r} declares requires {str(requires)[:40]!r}, not module names"
    calls = ("write", "load", "read_metadata", "stamp")
    if not all(callable(getattr(target, c, None)) for c in calls):
        return f"target {name!r} lacks one of {', '.join(calls)}"
    if name in reserved_names:
        return f"target {name!r} takes the name of a built-in target"
    if suffix != "/" and suffix in reserved_suffixes:
        return f"target {name!r} takes the suffix {suffix!r} of a built-in target or format"
    return None


def export_targets() -> dict[str, ExportTarget]:
    """Registered export targets by name, available or not. A plugin whose hook raises, returns
    something else or a malformed target, or takes a built-in target's name or suffix (or a
    weight format's), is left out and named among ``plugin_failures``."""
    found = _isolated(get_plugin_manager().hook.fmnist_export_targets)
    built_in = [t for _, own, t in found if own]
    names = {t.name for t in built_in if isinstance(getattr(t, "name", None), str)}
    suffixes = {t.suffix for t in built_in if isinstance(getattr(t, "suffix", None), str)}
    suffixes |= {s for f in weight_formats().values() for s in f.suffixes}
    targets: dict[str, ExportTarget] = {}
    for plugin, own, target in found:
        problem = _target_problem(target, set() if own else names, set() if own else suffixes)
        if problem is None and target.name in targets:
            problem = f"target {target.name!r} is registered twice"
        if problem:
            _target_failures[plugin] = problem
            continue
        targets[target.name] = target
    return targets


def get_export_target(name: str) -> ExportTarget:
    """The export target called ``name``, usable; anything else is a one-line error."""
    registered = export_targets()
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none"
        raise BackendError(
            f"unknown export format {name!r}; installed: {known}" + _failure_hint(),
            fix="pick one of those, or install the plugin that provides it ("
            + "; ".join(f"{', '.join(names)}: {extra}" for extra, names in BUILT_IN_TARGETS.items())
            + ")",
        )
    reason = registered[name].unavailable_reason()
    if reason:
        raise BackendError(
            f"export format {name!r} is installed but unusable: {reason}",
            fix=f"install what it needs ({registered[name].plugin})",
        )
    return registered[name]


def layer_types() -> dict[str, type[Layer]]:
    """Registered layer types by ``kind``. Two plugins registering one kind is an error."""
    found: dict[str, type[Layer]] = {}
    for layer in _collect(get_plugin_manager().hook.fmnist_layers):
        if found.get(layer.kind, layer) is not layer:
            raise ConfigError(
                f"layer type {layer.kind!r} is registered twice ({found[layer.kind].__module__} "
                f"and {layer.__module__})",
                fix="uninstall one of the two plugins",
            )
        found[layer.kind] = layer
    return found


def lowerings() -> list[Lowerings]:
    """Every registered lowering table, for every backend."""
    return _collect(get_plugin_manager().hook.fmnist_lowerings)


def ejections() -> list[Ejections]:
    """Every registered ejection table, for every framework."""
    return _collect(get_plugin_manager().hook.fmnist_ejections)


def commands() -> dict[str, Command]:
    """Registered ``fmnist`` subcommands by name."""
    return {c.name: c for c in _collect(get_plugin_manager().hook.fmnist_commands)}


def _failure_hint() -> str:
    failures = plugin_failures()
    if not failures:
        return ""
    return "; plugins that failed to load: " + ", ".join(f"{f.name} ({f.error})" for f in failures)


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name``; for None, the available one with the highest priority."""
    registered = backends()
    if name is None:
        usable = [b for b in registered.values() if b.unavailable_reason() is None]
        if not usable:
            raise BackendError("no usable backend is installed" + _failure_hint())
        return max(usable, key=lambda b: b.priority)
    if name not in registered:
        raise BackendError(
            f"unknown backend {name!r}; installed backends: {', '.join(sorted(registered))}"
            + _failure_hint(),
            fix=f"pick one of those, or `pip install fmnist-core[{name}]`",
        )
    backend = registered[name]
    reason = backend.unavailable_reason()
    if reason:
        raise BackendError(
            f"backend {name!r} is installed but unusable: {reason}",
            fix=f"`pip install fmnist-core[{name}]`",
        )
    return backend


def get_model(name: str) -> ModelSpec:
    """The model recipe called ``name``."""
    registered = models()
    if name not in registered:
        raise BackendError(
            f"unknown model {name!r}; known models: {', '.join(sorted(registered))}",
            fix="pick one of those",
        )
    return registered[name]


def get_layer_type(kind: Any) -> type[Layer]:
    """The layer type registered as ``kind``; anything else is a ``ConfigError`` listing them."""
    registered = layer_types()
    if not isinstance(kind, str) or kind not in registered:
        raise ConfigError(
            f"unknown layer type {str(kind)[:60]!r}",
            fix=f"use one of {', '.join(sorted(registered))}, or install the plugin "
            "that provides it",
        )
    return registered[kind]
