"""``TrainConfig``: every setting of a training run, declared once.

Each field is a ``setting(...)``: its default (``None`` for "the model's recipe decides"), the
check that turns a given value into a valid one or a one-line ``ConfigError``, its help text,
its command-line flag and whether a run records it. Everything else is derived from these
fields, never kept by hand: ``Trainer``'s keyword arguments, the ``fmnist train`` flags, the
config-file keys, the recorded ``config.json`` and weights metadata, the checkpoint, the
scikit-learn estimator's parameters, the names a tune space may use and the model card's table.

Adding a setting: one ``setting`` field here, and the engines that implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..checks import (
    MAX_LEARNING_RATE,
    boolean,
    count_or_fraction,
    integer,
    number,
    one_of,
)
from ..data.augment import Augment, as_augment
from ..engine.precision import PRECISIONS
from ..errors import ConfigError
from ..spec.model import ModelSpec, Recipe
from ..spec.optimizers import OPTIMIZERS, SCHEDULES, Optimizer, Schedule, as_optimizer, as_schedule

Config = TypeVar("Config", bound="TrainConfig")
MAX_SEED = 2**32 - 1  # every framework's seed fits an unsigned 32-bit integer


def _built(convert: Callable[[Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: convert(value)


# -- one setting ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """What a ``TrainConfig`` field declares (``setting()`` makes one)."""

    name: str
    default: Any
    check: Callable[[str, Any], Any]
    help: str
    recipe: bool  # None takes the model's recipe
    fallback: Any  # a recipe setting's value where the recipe gives none: the article's
    recorded: bool  # in config.json and weights files
    flag: str  # the fmnist train flag
    cli_type: Any  # argparse's type, or "flag" (--x/--no-x), or "switch" (--x)
    choices: tuple[str, ...]
    parts: tuple[tuple[str, Any, str], ...]  # (key, type, help): flags for keys of a dict form
    metavar: str | None

    def coerce(self, value: Any) -> Any:
        return (
            value
            if value is None and (self.recipe or self.default is None)
            else (self.check(self.name, value))
        )


def setting(
    default: Any,
    check: Callable[[str, Any], Any],
    help: str,
    *,
    recipe: bool = False,
    fallback: Any = None,
    recorded: bool = True,
    flag: str | None = None,
    cli_type: Any = None,
    choices: tuple[str, ...] = (),
    parts: tuple[tuple[str, Any, str], ...] = (),
    metavar: str | None = None,
) -> Any:
    return field(
        default=default,
        metadata={
            "setting": dict(
                check=check,
                help=help,
                recipe=recipe,
                fallback=fallback,
                recorded=recorded,
                flag=flag,
                cli_type=cli_type,
                choices=choices,
                parts=parts,
                metavar=metavar,
            )
        },
    )


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. ``None`` in a recipe field means "the model's recipe";
    ``resolve(recipe)`` fills those in. Built with checks: a bad value is a ``ConfigError``."""

    epochs: int | None = setting(
        None, integer(1), "epochs to train", recipe=True, fallback=5, cli_type=int
    )
    batch_size: int | None = setting(
        None, integer(1), "images per step", recipe=True, fallback=64, cli_type=int
    )
    learning_rate: float | None = setting(
        None,
        number(above=0, below=MAX_LEARNING_RATE),
        "(peak) learning rate",
        recipe=True,
        fallback=0.1,
        flag="--lr",
    )
    steps_per_epoch: int | None = setting(
        None,
        integer(1),
        "train each epoch on the first N batches of its seeded order only (default: all), as "
        "Keras' steps_per_epoch: a short run to try a setting",
        cli_type=int,
        metavar="N",
    )
    seed: int = setting(0, integer(0, MAX_SEED), "seed of the weights, order and augmentation")
    optimizer: Optimizer | None = setting(
        None,
        _built(as_optimizer),
        "optimizer",
        recipe=True,
        fallback="sgd",
        choices=OPTIMIZERS,
        parts=(
            ("momentum", float, "SGD momentum"),
            ("nesterov", "switch", "Nesterov momentum (SGD)"),
            ("weight_decay", float, "L2 (sgd, adam) or decoupled (adamw) weight decay"),
        ),
    )
    schedule: Schedule | None = setting(
        None,
        _built(as_schedule),
        "learning-rate schedule",
        recipe=True,
        fallback="constant",
        choices=SCHEDULES,
    )
    augment: Augment | None = setting(
        None,
        _built(as_augment),
        "training-time augmentation, e.g. flip,translate:2,erase:0.5 (or none)",
        recipe=True,
        cli_type=str,
        metavar="LIST",
    )
    label_smoothing: float | None = setting(
        None, number(minimum=0, below=1), "label smoothing", recipe=True, fallback=0.0, metavar="E"
    )
    ema: float | None = setting(
        None,
        number(minimum=0, below=1),
        "evaluate and save an average of the weights (e.g. 0.999; 0: off)",
        recipe=True,
        fallback=0.0,
        metavar="DECAY",
    )
    tta: bool | None = setting(
        None,
        boolean,
        "evaluate on each image and its mirror image",
        recipe=True,
        fallback=False,
        cli_type="flag",
    )
    lookahead_steps: int = setting(
        0,
        integer(0),
        "lookahead: every N steps move the slow weights lookahead_alpha of the way to the fast "
        "ones and continue from there (0: off; each epoch ends in a sync)",
        metavar="N",
    )
    lookahead_alpha: float = setting(
        0.5, number(above=0, below=1), "lookahead's step towards the fast weights", metavar="A"
    )
    precision: str = setting(
        "float32",
        one_of(*PRECISIONS),
        "float32: exact, the same steps on every backend; bfloat16: float32 weights, bfloat16 "
        "matmuls and convolutions (torch); auto: bfloat16 where the backend has it and the CPU "
        "computes it natively (AMX, AVX512-BF16), else float32",
        choices=PRECISIONS,
    )
    init: str = setting(
        "core",
        one_of("core", "framework"),
        "core: fmnist's seeded weights (the same on every backend); framework: its own",
        choices=("core", "framework"),
    )
    log_every: int = setting(100, integer(1), "progress every N batches")
    steps_per_execution: int = setting(100, integer(1), "steps per engine call")
    validation: int | float | None = setting(
        None,
        count_or_fraction,
        "hold out N training images (or a fraction, 0.1) as a validation split",
        cli_type="count",
        metavar="N",
    )
    evaluate_each_epoch: bool = setting(
        False, boolean, "evaluate on the test set every epoch", cli_type="switch"
    )
    max_memory_gb: float = setting(
        8.0,
        number(above=0),
        "refuse a model that would need more memory to train",
        recorded=False,
    )

    def __post_init__(self) -> None:
        for spec in settings():
            object.__setattr__(self, spec.name, spec.coerce(getattr(self, spec.name)))

    # -- derived views ----------------------------------------------------------------------
    def resolve(self, recipe: Recipe) -> ResolvedConfig:
        """This config with every recipe setting left at ``None`` taken from ``recipe`` (a
        partial config: where it gives none, the setting's ``fallback``, the article's)."""
        check_recipe(recipe)
        return cast(
            ResolvedConfig,
            replace(
                self,
                **{
                    s.name: s.check(s.name, recipe.get(s.name, s.fallback))
                    for s in settings()
                    if s.recipe and getattr(self, s.name) is None
                },
            ),
        )

    def replace(self: Config, **changes: Any) -> Config:
        """A copy with ``changes`` (checked)."""
        unknown(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The recorded settings, as JSON values (``from_dict`` reads them back)."""
        return {s.name: _plain(getattr(self, s.name)) for s in settings() if s.recorded}

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "the config") -> TrainConfig:
        """A config from recorded settings (``to_dict``, a config file, a weights file)."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source} holds a {type(values).__name__}, not a table of settings")
        unknown(values, source)
        return cls(**values)


if TYPE_CHECKING:

    class ResolvedConfig(TrainConfig):
        """A ``TrainConfig`` whose recipe settings are filled in (``resolve``): what the loop,
        the engines and the trainer hold, for type checkers."""

        epochs: int
        batch_size: int
        learning_rate: float
        optimizer: Optimizer
        schedule: Schedule
        augment: Augment
        label_smoothing: float
        ema: float
        tta: bool

else:
    ResolvedConfig = TrainConfig


def _declared() -> dict[str, Setting]:
    return {
        f.name: Setting(
            name=f.name,
            default=f.default,
            **{
                **f.metadata["setting"],
                "flag": f.metadata["setting"]["flag"] or "--" + f.name.replace("_", "-"),
            },
        )
        for f in fields(TrainConfig)
    }


SETTINGS = _declared()
"""Every setting by name, in declaration order (read once from the fields)."""


def settings() -> Iterator[Setting]:
    """Every setting, in declaration order."""
    return iter(SETTINGS.values())


NAMES = tuple(SETTINGS)
RECORDED = tuple(s.name for s in settings() if s.recorded)


def unknown(values: dict[str, Any], source: str | None = None) -> None:
    """A one-line error for a name that is not a setting."""
    import difflib

    for key in values:
        if key not in NAMES:
            # a suggestion only for a name that could be a misspelt setting: difflib is
            # quadratic, and a key read from a file may be a megabyte long
            short = len(str(key)) <= 64
            near = difflib.get_close_matches(str(key), NAMES, n=1) if short else []
            where = f"{source} has no setting" if source else "no setting is named"
            shown = repr(key) if short else f"{str(key)[:40]!r}… ({len(str(key)):,} characters)"
            raise ConfigError(
                f"{where} {shown}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f"; the settings: {', '.join(NAMES)}",
                fix="remove or rename it",
            )


RECIPE_SETTINGS = tuple(s.name for s in settings() if s.recipe)
"""What a model's ``Recipe`` may give."""


def check_recipe(recipe: Recipe) -> None:
    """A recipe naming anything but a recipe setting is a one-line error."""
    if not isinstance(recipe, Recipe):
        raise ConfigError(
            f"a model's recipe must be an fmnist_core.Recipe, got {type(recipe).__name__}",
            fix="pass recipe=Recipe(epochs=..., ...)",
        )
    wrong = [str(name) for name in recipe.given if name not in RECIPE_SETTINGS]
    if wrong:
        raise ConfigError(
            f"a model's recipe gives {', '.join(map(repr, wrong))}, not recipe settings; a "
            f"recipe gives {', '.join(RECIPE_SETTINGS)}",
            fix="pass the others to Trainer (or in the run's config)",
        )


TRAINER_ARGUMENTS = (
    "backend",
    "model",
    "config",
    "data",
    "data_dir",
    "verify_checksums",
    "callbacks",
    "verbose",
)
"""``Trainer``'s own keyword arguments: never a backend option's name."""


def check_options(options: dict[str, Any], source: str) -> None:
    """Refuse backend options named as a setting or as one of ``Trainer``'s own arguments."""
    taken = sorted(str(k) for k in options if k in NAMES or k in TRAINER_ARGUMENTS)
    if taken:
        raise ConfigError(
            f"{source}: the backend option(s) {', '.join(map(repr, taken))} are named as "
            "settings or Trainer arguments, not options",
            fix='give each setting once, at the top level (model = "cnn", not under options)',
        )


def split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, the rest: backend options) of keyword arguments."""
    return (
        {k: v for k, v in values.items() if k in NAMES},
        {k: v for k, v in values.items() if k not in NAMES},
    )


def _plain(value: Any) -> Any:
    if isinstance(value, (Optimizer, Schedule)):
        return value.to_dict()
    if isinstance(value, Augment):
        return str(value)
    return value


def check_memory(model: ModelSpec, config: ResolvedConfig) -> None:
    """A model that training would need more memory for than ``max_memory_gb`` is refused
    from its shapes alone (a recorded architecture or a JSON file can declare anything)."""
    params, activations = model.memory_estimate(config.batch_size)
    need = (params + activations) / 2**30
    if need > config.max_memory_gb:
        raise ConfigError(
            f"model {model.name!r} would need about {need:,.1f} GiB to train "
            f"({model.count_params():,} parameters, {activations / 2**30:,.1f} GiB of "
            f"activations per batch of {config.batch_size}); the limit is "
            f"{config.max_memory_gb:g} GiB",
            fix="use a smaller model or batch, or raise the limit "
            "(max_memory_gb=, --max-memory-gb)",
        )
