"""The contract between the core and a framework backend.

The core owns epochs, shuffling, batching by index, metrics, callbacks, progress and the
optimizer's arithmetic and state (``OptimizerSlots``). A backend owns its tensors and device,
builds the model through its lowering table (``fmnist_core.engine.lowering``), and supplies the
steps:

* ``Engine.attach(images, labels)`` keeps the training set resident on the device (uint8);
* ``Engine.train_steps(batches, scalars)`` runs ``k`` optimizer steps for a ``(k, batch_size)``
  index matrix, gathering and scaling (float32 ÷ 255) each batch itself, with no host
  synchronisation between steps, and returns each step's mean loss and correct count;
  ``scalars`` ``(k, len(optimizer.columns))`` are the per-step values (scheduled learning rate…)
  that ``Optimizer.update`` reads;
* ``Engine.logits(images)`` runs the forward pass in inference mode on a chunk of uint8 images
  (the core cuts evaluation and prediction into chunks);
* ``get_params``/``set_params`` move parameters and buffers in the neutral layout
  (``fmnist_core.spec.model``); the optimizer's slots live in ``Engine.slots``.

Every backend computes the same thing: ``loss = mean cross-entropy of the batch``, the update of
``fmnist_core.spec.optimizers``, accuracy counted on the logits before the update.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import BackendError, ConfigError
from ..spec.model import ModelSpec
from ..spec.optimizers import Optimizer
from .optimizer_slots import OptimizerSlots

if TYPE_CHECKING:  # the run's settings are declared above the engines (training.config)
    from ..training.config import TrainConfig

INFERENCE_CHUNK = 8192


@dataclass(frozen=True)
class StepResult:
    """What ``train_steps`` returns: per-step mean loss (k,) and correct counts (k,)."""

    losses: np.ndarray
    correct: np.ndarray


@dataclass
class EngineConfig:
    """Everything a backend needs to build an engine: the model, the run's resolved settings
    (``settings``, a ``TrainConfig`` whose every field an engine may read; ``precision`` already
    what this backend computes in), the initial weights, the backend's options and the worker's
    place. A setting that engines implement is a ``TrainConfig`` field they read here."""

    model: ModelSpec
    settings: TrainConfig
    initial_params: dict[str, np.ndarray] | None = None  # None: the framework's own initialiser
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific, e.g. device
    rank: int = 0  # data-parallel: this worker's rank among ``world_size`` (see ``shard``)
    world_size: int = 1

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def optimizer(self) -> Optimizer:
        return self.settings.optimizer  # type: ignore[return-value]

    @property
    def label_smoothing(self) -> float:
        """The loss: (1 - ε) · cross-entropy + ε · the mean over classes of -log softmax."""
        return float(self.settings.label_smoothing or 0.0)

    @property
    def precision(self) -> str:
        """ "float32", or "bfloat16" (float32 weights, bfloat16 matmuls) where the backend's
        ``precisions`` has it."""
        return self.settings.precision


class Engine(ABC):
    """A model, its optimizer's slots and its resident data on one backend."""

    device: str = "cpu"
    slots: OptimizerSlots | None = None  # set by engines that train
    images: Any = None  # the resident training images, set by ``attach``

    def require_attached(self) -> None:
        """The error for steps asked of an engine that holds no training data yet."""
        if self.images is None:
            raise BackendError(
                f"{type(self).__name__}.train_steps called before attach()",
                fix="attach the training data first",
            )

    @abstractmethod
    def attach(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Keep the training images (N, 28, 28) uint8 and labels (N,) uint8 on the device."""

    @abstractmethod
    def train_steps(self, batches: np.ndarray, scalars: np.ndarray) -> StepResult:
        """One optimizer step per row of ``batches`` (k, batch_size) int64 indices into the data,
        with that row of ``scalars`` (k, columns) float32."""

    @abstractmethod
    def logits(self, images: np.ndarray) -> np.ndarray:
        """Logits (n, classes) float32 of a chunk of uint8 images (n, H, W), in inference mode."""

    @abstractmethod
    def get_params(self) -> dict[str, np.ndarray]:
        """A copy of the parameters and buffers in the neutral layout."""

    @abstractmethod
    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Replace the parameters and buffers (neutral layout, already checked for the model)."""

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Optimizer slots for checkpoints, ``{"{slot}.{param}": array}`` (plain SGD has none)."""
        return self.slots.state() if self.slots is not None else {}

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``optimizer_state`` returned."""
        if self.slots is not None:
            self.slots.load(state)
        elif state:
            raise BackendError(
                f"{type(self).__name__} has no optimizer state to restore",
                fix="resume with the optimizer the checkpoint was written with",
            )


@dataclass(frozen=True)
class Option:
    """A backend option: its name, type, default, allowed values and one line of help.

    ``does_nothing(options)`` returns why the option has no effect with the other options given
    (then setting it is an error), or None.
    """

    name: str
    type: type  # bool, int (≥ 1), float or str (checked by ``fmnist_core.checks.declared``)
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    pattern: str = ""  # a regular expression a string value may match instead of the choices
    does_nothing: Any = None  # Callable[[dict], str | None]

    def describe(self) -> str:
        allowed = (
            f" ({', '.join(map(str, self.choices))}{', …' if self.pattern else ''})"
            if self.choices
            else ""
        )
        return f"{self.name}{allowed}, default {self.default!r}: {self.help}"


class Backend(ABC):
    """A framework backend, registered by a plugin and looked up by ``name``.

    Creating the object must be cheap and import no framework: ``requires`` names the modules
    whose presence makes it usable, checked without importing them.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 0  # backend=None picks the highest available
    requires: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()  # what Trainer(**options) may pass; nothing else
    trains: ClassVar[bool] = True  # False: an inference-only backend (train_steps is never called)
    trains_data_parallel: ClassVar[bool] = False  # True: world_size > 1 works, and launch_workers
    precisions: ClassVar[tuple[str, ...]] = ("float32",)  # what EngineConfig.precision may be

    def bfloat16_pays(self, options: dict[str, Any]) -> bool:
        """Whether ``precision="auto"`` should pick bfloat16 with these options on a CPU that
        computes it natively: where the backend offers it and it was measured to be faster."""
        return "bfloat16" in self.precisions

    def launch_workers(self, argv: list[str], workers: int) -> int:
        """Run ``fmnist <argv>`` as ``workers`` data-parallel processes; return the exit code."""
        raise not_data_parallel(self.name, workers)

    def worker_rank(self) -> tuple[int, int]:
        """(rank, world size) of this process as the backend's launcher tells it: by default
        torchrun's ``RANK``/``WORLD_SIZE`` (``fmnist_core.engine.workers.worker_rank``)."""
        from .workers import worker_rank

        return worker_rank()

    def lowers(self, kind: str) -> bool:
        """Whether this backend can build layer type ``kind`` (its lowering table has it;
        imports the tables' modules, so the framework)."""
        from .lowering import lowering_table

        return kind in lowering_table(self.name).builders

    def check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` checked against ``options`` and completed with the defaults.

        Raises ``ConfigError`` naming an unknown option (with the valid ones), a value of the
        wrong type or outside the allowed values, or an option that does nothing here.
        """
        import difflib

        from .. import checks

        declared = {option.name: option for option in self.options}
        for name in given:
            if name not in declared:
                short = len(str(name)) <= 64  # difflib is quadratic; a file's key may be huge
                near = difflib.get_close_matches(str(name), declared, n=1) if short else []
                valid = ", ".join(declared) or "none"
                shown = repr(name) if short else f"{str(name)[:40]!r}… ({len(str(name)):,} chars)"
                raise ConfigError(
                    f"backend {self.name!r} has no option {shown}"
                    + (f" (did you mean {near[0]!r}?)" if near else "")
                    + f"; its options: {valid}",
                    fix="see `fmnist backends --options`",
                )
        resolved = {}
        for name, option in declared.items():
            value = given.get(name, option.default)
            if value is not None and name in given:
                check = checks.declared(
                    option.type,
                    choices=option.choices,
                    pattern=option.pattern,
                    minimum=1 if option.type is int else None,
                )
                try:
                    value = check(f"backend {self.name!r} option {name}", value)
                except ConfigError as exc:
                    raise ConfigError(exc.message, fix=option.describe()) from None
            resolved[name] = value
        for name in given:
            reason = declared[name].does_nothing(resolved) if declared[name].does_nothing else None
            if reason:
                raise ConfigError(
                    f"backend {self.name!r} option {name}={given[name]!r} does nothing here: "
                    f"{reason}",
                    fix=f"drop {name}",
                )
        return resolved

    def unavailable_reason(self) -> str | None:
        """None when usable; otherwise why not (a missing module), without importing it."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"module {module!r} is not installed"
        return None

    def versions(self) -> dict[str, str]:
        """Versions of the framework packages behind this backend."""
        from importlib.metadata import PackageNotFoundError, version

        found = {}
        for module in self.requires:
            try:
                found[module] = version(module)
            except PackageNotFoundError:
                found[module] = "not installed"
        return found

    @abstractmethod
    def create_engine(self, config: EngineConfig) -> Engine:
        """Build the model of ``config.model`` (from ``config.initial_params`` when given) and its
        optimizer. Every backend builds every ``ModelSpec``."""


def not_data_parallel(name: str, workers: int) -> ConfigError:
    """The ``ConfigError`` for ``workers`` asked of a backend that trains in one process only,
    naming the installed backends that do train data-parallel."""
    from .. import plugins

    able = sorted(
        n
        for n, b in plugins.backends().items()
        if b.trains_data_parallel and b.unavailable_reason() is None
    )
    return ConfigError(
        f"backend {name!r} does not train data-parallel ({workers} workers asked for)",
        fix=f"use --backend {', '.join(able)}, or one worker" if able else "use one worker",
    )


def checked_workers(backend: Backend, batch_size: int) -> tuple[int, int]:
    """(rank, world size) of this process; a ``ConfigError`` when the backend cannot train with
    that many workers or the batch is smaller than the workers."""
    rank, world_size = backend.worker_rank()
    if world_size > 1 and not backend.trains_data_parallel:
        raise not_data_parallel(backend.name, world_size)
    if world_size > batch_size:
        raise ConfigError(
            f"batch_size {batch_size} is smaller than the {world_size} workers",
            fix=f"pass batch_size={world_size} or more",
        )
    return rank, world_size


def check_trains(backend: Backend) -> None:
    """A ``BackendError`` for a backend that runs inference only, naming those that train."""
    from .. import plugins

    if backend.trains:
        return
    found = plugins.backends().items()
    trainers = sorted(n for n, b in found if b.trains and b.unavailable_reason() is None)
    raise BackendError(
        f"backend {backend.name!r} runs inference only and cannot train",
        fix=f"train with one of {', '.join(trainers)}, then export or load the weights",
    )


def chunked_logits(
    run: Callable[[np.ndarray], Any],
    images: np.ndarray,
    tta: bool = False,
    chunk: int = INFERENCE_CHUNK,
) -> np.ndarray:
    """Logits (float32) of any number of uint8 images by ``run`` (an engine's ``logits``, an
    exported artifact's runtime), ``chunk`` images a call; ``tta``: averaged with the mirror
    images' logits. The one place fmnist computes logits in chunks: the loop's evaluation, the
    export gate and exported models (``fmnist serve`` calls those)."""
    from ..data.augment import flipped

    def once(batch: np.ndarray) -> np.ndarray:
        parts = [
            np.asarray(run(batch[start : start + chunk]), np.float32)
            for start in range(0, len(batch), chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    logits = once(images)
    if tta:
        logits = (logits + once(flipped(images))) / np.float32(2)
    return logits
