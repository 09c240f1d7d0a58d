"""The plugin hooks. A plugin is a module registered under the entry-point group ``fmnist``.

Each hook returns a list; the core collects the lists of every plugin. Implement a hook with
``@fmnist_core.hookimpl``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("fmnist")
hookimpl = pluggy.HookimplMarker("fmnist")


@hookspec
def fmnist_backends():
    """Return a list of ``fmnist_core.Backend`` objects this plugin supplies.

    Building them must import no framework; the framework is imported by ``create_engine``.
    """


@hookspec
def fmnist_models():
    """Return a list of ``fmnist_core.ModelSpec`` architectures this plugin adds."""


@hookspec
def fmnist_weight_formats():
    """Return a list of ``fmnist_core.WeightFormat`` objects: files this plugin reads or writes.

    A format converts between its files and the neutral layout, so that any backend can load
    weights saved by any other and ``fmnist convert`` can move them between formats.
    """
