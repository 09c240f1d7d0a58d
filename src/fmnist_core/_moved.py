"""Module paths of fmnist 0.2 that moved in 0.3, kept importable with a ``DeprecationWarning``.

``import fmnist_core.models`` (and ``from fmnist_core.trainer import Trainer`` …) still work:
a finder on ``sys.meta_path`` gives each old path a module whose names are looked up, on first
use, where they live now.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

#: old module → (new modules whose names it offers, first match wins)
MOVED: dict[str, tuple[str, ...]] = {
    "models": ("spec.model", "spec.layers", "spec.recipes", "spec.layer"),
    "optimizers": ("spec.optimizers",),
    "backend": ("engine.backend", "engine.batching"),
    "iteration": ("engine.batching",),
    "workers": ("engine.workers",),
    "weights": ("io.weights", "io.formats", "plugins"),
    "formats": ("io.formats",),
    "onnx_export": ("io.onnx",),
    "files": ("atomic",),
    "dataset_files": ("data.spec",),
    "idx": ("data.idx",),
    "download": ("data.download",),
    "images": ("data.images",),
    "trainer": ("training.trainer", "training.checkpoints"),
    "callbacks": ("training.callbacks",),
    "metrics": ("training.metrics",),
    "tracking": ("training.tracking",),
    "serve": ("apps.serve",),
    "tune": ("apps.tune",),
    "plots": ("apps.plots",),
}
#: names that were renamed on the way
RENAMED = {
    ("trainer", "model_of"): ("io.weights", "architecture_of"),
    ("trainer", "CHECKPOINT_NAME"): ("training.checkpoints", "CHECKPOINT_NAME"),
    ("backend", "shard"): ("engine.batching", "shard"),
}
#: modules that left the core for a plugin (framework code)
LEFT = {"compat": "fmnist_tf.runtime"}


class _MovedModule(types.ModuleType):
    def __init__(self, package: str, old: str):
        super().__init__(f"{package}.{old}")
        self._package, self._old = package, old

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._old in LEFT:
            places = [(LEFT[self._old], name)]
        elif (self._old, name) in RENAMED:
            new, attribute = RENAMED[(self._old, name)]
            places = [(f"{self._package}.{new}", attribute)]
        else:
            places = [(f"{self._package}.{new}", name) for new in MOVED[self._old]]
        for module_name, attribute in places:
            module = importlib.import_module(module_name)
            if hasattr(module, attribute):
                warnings.warn(
                    f"{self.__name__}.{name} is now {module_name}.{attribute}; the old path goes "
                    "in "
                    "fmnist 0.4",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, attribute)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path, target=None):
        package, _, old = fullname.rpartition(".")
        if package == self.package and (old in MOVED or old in LEFT):
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return _MovedModule(self.package, spec.name.rpartition(".")[2])

    def exec_module(self, module):
        pass


def install(package: str) -> None:
    """Make the old paths of ``package`` importable (once per process)."""
    if not any(isinstance(f, _Finder) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_Finder(package))
