"""Ejection tables: a framework's program as ``fmnist eject`` writes it, from its plugin.

``fmnist eject`` writes a model and its recipe as a plain program of one framework. What every
program shares (the data reader, the schedule, the batches, the weight average, the command line)
is the core's (``fmnist_core.apps.eject``); what is the framework's is its plugin's:

- each layer type's text sits beside its lowering, in the backend's lowering table (a plugin that
  adds a layer type adds its text there too)::

    @LOWERINGS.text("Dense")              # the layer applied to variable x, input ``shape``
    def dense_text(layer, shape, lines, x):
        lines.init(f"{lines.attribute(layer)} = nn.Linear({shape[0]}, {layer.units})")
        lines.forward(f"{x} = {lines.attribute(layer)}({x})")

- the rest of the program (its imports, the network around the layers, the training functions)
  and the files beside it are an ``EjectionTable`` registered through the ``fmnist_ejections``
  hook as an ``Ejections(framework, module)``, whose module (imported only when a program is
  written) defines ``EJECTION``::

    EJECTION = EjectionTable("torch", title="PyTorch", weights_format="pth",
                             initial="initial.pth", weights="weights.pth")

    @EJECTION.program
    def program(spec, config, lines):     # {"imports", "NeuralNetwork", "training"}
        ...

The layer types a framework writes are its lowering table's texts; any other is one error naming
it, before anything is written.
"""

from __future__ import annotations

import importlib
import json
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendError, ConfigError

LayerText = Callable[[Any, tuple, "ProgramLines", str], None]
ProgramText = Callable[[Any, Any, "ProgramLines"], dict[str, str]]
PROGRAM_SECTIONS = ("imports", "NeuralNetwork", "training")
"""The sections a framework's ``program`` writes; the core writes the others."""


def block(text: str) -> str:
    """``text`` dedented, without leading and trailing blank lines, ending in one newline."""
    return textwrap.dedent(text).strip("\n") + "\n"


def escaped(value: object) -> str:
    """``value`` as text that can sit inside any of a program's string literals or docstrings
    and stay text there: quotes, backslashes and control characters escaped (names and
    descriptions come from files that users share)."""
    return json.dumps(str(value), ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class Ejections:
    """What ``fmnist_ejections`` returns: ``module`` holds ``EJECTION``, an ``EjectionTable``
    for ``framework``."""

    framework: str
    module: str
    attribute: str = "EJECTION"

    def load(self) -> EjectionTable:
        table = getattr(importlib.import_module(self.module), self.attribute)
        if not isinstance(table, EjectionTable) or table.framework != self.framework:
            raise BackendError(
                f"{self.module}.{self.attribute} is not an EjectionTable for framework "
                f"{self.framework!r}",
                fix="define EJECTION = EjectionTable(framework) in that module",
            )
        return table


@dataclass
class EjectionTable:
    """``framework``'s program: its own sections (``program``), the files beside it (the initial
    weights in ``weights_format``, named ``initial``; the trained ones it saves, ``weights``),
    and the backend whose lowering table holds its layers' texts (``lowering``, by default the
    framework's name)."""

    framework: str
    title: str | None = None
    weights_format: str | None = None
    initial: str | None = None
    weights: str | None = None
    lowering: str | None = None
    program_text: ProgramText | None = None

    def program(self, writer: ProgramText) -> ProgramText:
        """Decorator: the function writes the program's ``PROGRAM_SECTIONS``."""
        self.program_text = writer
        return writer

    @property
    def name(self) -> str:
        return self.title or self.framework

    @property
    def writers(self) -> dict[str, LayerText]:
        """Its layers' texts: its backend's lowering table's (whose modules import the
        framework, so only writing a program reads them)."""
        from .lowering import lowering_table

        return lowering_table(self.lowering or self.framework).texts

    def writer(self, layer: Any) -> LayerText:
        """The writer of ``layer``'s type; a ``ConfigError`` naming it when there is none."""
        try:
            return self.writers[layer.kind]
        except KeyError:
            raise ConfigError(
                f"fmnist eject cannot write layer type {layer.kind!r} in {self.name} (it writes "
                f"{', '.join(self.writers)})",
                fix="install the plugin that writes that layer type's text for "
                f"{self.framework}, eject a model made of those, or train it with fmnist's "
                "backends",
            ) from None

    def check(self, layers: Iterable[Any]) -> None:
        """Refuse, before anything is written, a layer type this table does not write."""
        for layer in layers:
            self.writer(layer)

    def lines(self) -> ProgramLines:
        return ProgramLines(self)

    def merged(self, other: EjectionTable, module: str) -> None:
        for name in ("title", "weights_format", "initial", "weights", "lowering", "program_text"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None and mine is not None and mine is not theirs:
                raise BackendError(
                    f"two plugins write the {self.framework!r} program ({name} set twice; the "
                    f"second is {module})",
                    fix="uninstall one of the two plugins",
                )
            if theirs is not None:
                setattr(self, name, theirs)


@dataclass
class ProgramLines:
    """The lines a network's constructor and forward pass get while a table walks its layers,
    and the helpers (``needs``) the program must define."""

    table: EjectionTable
    inits: list[str] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    needs: set[str] = field(default_factory=set)
    depth: int = 0  # how deeply nested the layer being written is (names ``y0``, ``y1``…)
    owner: str = "self"  # the attribute the layers being written hang from

    def init(self, line: str) -> None:
        self.inits.append(line)

    def forward(self, line: str) -> None:
        self.forwards.append(line)

    def stack(self, layers: Iterable[Any], shape: tuple, x: str = "x",
              owner: str | None = None) -> tuple:  # fmt: skip
        """Write ``layers`` applied in turn to variable ``x`` of neutral input ``shape`` (their
        modules under attribute ``owner`` when given); returns the output shape."""
        saved = self.owner
        self.owner = saved if owner is None else owner
        try:
            for layer in layers:
                self.table.writer(layer)(layer, shape, self, x)
                shape = layer.output_shape(shape)
        finally:
            self.owner = saved
        return shape

    def attribute(self, layer: Any) -> str:
        """The attribute a layer's module is held in (``self.res1.conv1``)."""
        return f"{self.owner}.{local_name(layer)}"


def local_name(layer: Any) -> str:
    """The layer's own name within its block (``res1.conv1`` → ``conv1``)."""
    return str(layer.name.rsplit(".", 1)[-1] if layer.name else layer.kind.lower())


def keras_optimizer(optimizer: Any, keras: str = "keras") -> str:
    """The recipe's optimizer as Keras' (``keras`` or ``tf.keras``), reading the settings'
    constants."""
    if optimizer.kind == "sgd":
        return f"{keras}.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM, nesterov=NESTEROV)"
    if optimizer.kind == "adam":
        return (
            f"{keras}.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON)"
        )
    return (
        f"{keras}.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY, beta_1=BETA_1, "
        "beta_2=BETA_2, epsilon=EPSILON)"
    )


def keras_loss(config: Any, keras: str = "keras") -> tuple[str, str]:
    """The recipe's loss as Keras' (its constructor, and its call on ``y``, ``y_prime``)."""
    if config.label_smoothing:
        return (
            f"{keras}.losses.CategoricalCrossentropy(from_logits=True, "
            "label_smoothing=LABEL_SMOOTHING)",
            "loss_fn(tf.one_hot(y, 10), y_prime)",
        )
    return f"{keras}.losses.SparseCategoricalCrossentropy(from_logits=True)", "loss_fn(y, y_prime)"


BUILT_IN_FRAMEWORKS = {"torch": "PyTorch", "tf": "TensorFlow", "keras": "Keras"}
"""The frameworks fmnist's own plugins eject to (named in errors when their plugin is missing)."""

_tables: dict[tuple, EjectionTable] = {}


def ejection_table(framework: str) -> EjectionTable:
    """The union of every registered ejection table for ``framework`` (imports their modules)."""
    from .. import plugins

    entries = tuple(entry for entry in plugins.ejections() if entry.framework == framework)
    key = (framework, entries)
    if key not in _tables:
        table = EjectionTable(framework)
        for entry in entries:
            table.merged(entry.load(), entry.module)
        _tables[key] = table
    return _tables[key]


def ejectable_frameworks() -> list[str]:
    """The frameworks whose program some installed plugin writes: fmnist's own first, in the
    article's order, then others by name."""
    from .. import plugins

    named = {entry.framework for entry in plugins.ejections()}
    order = [f for f in BUILT_IN_FRAMEWORKS if f in named] + sorted(
        named - set(BUILT_IN_FRAMEWORKS)
    )
    return [f for f in order if ejection_table(f).program_text is not None]
