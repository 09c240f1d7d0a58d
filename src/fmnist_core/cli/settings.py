"""The settings on the command line and in config files, derived from ``TrainConfig``'s fields
(``fmnist_core.training.config``): one flag per setting for ``fmnist train`` and ``fmnist
tune``, and the reading of a TOML or JSON config file (a run's ``config.json`` is one)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from ..spec.model import Recipe
from ..training.config import SETTINGS, _plain, check_options, settings, unknown


# -- the command line, derived ----------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, recipe_default: str = "the model's recipe") -> None:
    """One flag per setting (and one per part of a composite one), help from the field."""
    for s in settings():
        default = f"default: {recipe_default}" if s.recipe else f"default: {_plain(s.default)}"
        text = f"{s.help}; {default}"
        if s.cli_type == "flag":
            parser.add_argument(
                s.flag, dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        elif s.cli_type == "switch":
            parser.add_argument(s.flag, dest=s.name, action="store_true", default=None, help=text)
        else:
            kind = {None: _scalar_type(s.default), "count": count_or_fraction_flag}.get(
                s.cli_type, s.cli_type
            )
            parser.add_argument(
                s.flag,
                dest=s.name,
                type=kind if not s.choices else str,
                choices=s.choices or None,
                default=None,
                metavar=s.metavar,
                help=text,
            )
        for key, kind, help_text in s.parts:
            flag_name = "--" + key.replace("_", "-")
            if kind == "switch":
                parser.add_argument(
                    flag_name, dest=f"{s.name}.{key}", action="store_true", help=help_text
                )
            else:
                parser.add_argument(
                    flag_name,
                    dest=f"{s.name}.{key}",
                    type=kind,
                    metavar=key.upper(),
                    help=help_text,
                )


def from_flags(args: argparse.Namespace, base: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The settings given as flags, over ``base`` (a config file's): a composite setting's parts
    change its recorded (or the recipe's) value."""
    given = {
        s.name: getattr(args, s.name) for s in settings() if getattr(args, s.name, None) is not None
    }
    values = {**base, **given}
    for s in settings():
        parts = {
            key: getattr(args, f"{s.name}.{key}")
            for key, _, _ in s.parts
            if getattr(args, f"{s.name}.{key}", None) not in (None, False)
        }
        if parts:
            current = values.get(s.name)
            current = recipe.get(s.name, s.fallback) if current is None else current
            whole = _plain(s.check(s.name, current))
            values[s.name] = {**(whole if isinstance(whole, dict) else {}), **parts}
            if s.name in given:
                values[s.name]["kind"] = given[s.name]
    return values


def _scalar_type(default: Any) -> Any:
    return {bool: None, int: int, float: float, str: str}.get(type(default), float)


def count_or_fraction_flag(text: str) -> int | float:
    """``5000`` or ``0.1`` on the command line: a count of samples or a fraction of them."""
    value = float(text)
    return value if 0 < value < 1 else int(value)


# -- config files, derived --------------------------------------------------------------------
RUN_KEYS = ("backend", "model", "architecture", "options", "log", "workers")
"""A config file's keys besides the settings: what runs the settings (``fmnist train``'s)."""
RESULT_KEYS = ("device", "data")  # config.json records them; results, not settings
MAX_CONFIG_BYTES = 1 << 20
MAX_NESTING = 32


def read_file(path: str) -> dict[str, Any]:
    """A config file (TOML or JSON, by its suffix; a run's ``config.json`` is one) as a dict:
    its keys the settings and ``RUN_KEYS``, each setting checked; special files, oversized
    files and absurd nesting are one-line errors before parsing."""
    import json
    import re

    import tomllib

    from ..atomic import read_user_file

    fix = "give a TOML or JSON file of settings (a run folder's config.json is one)"
    text = read_user_file(path, "the config file", MAX_CONFIG_BYTES, fix)
    toml = str(path).endswith(".toml")
    brackets = max((len(m) for m in re.findall(r"[\[{]+", text)), default=0)
    # dotted keys (a.b.c = 1) nest too. A run starts only where a word does, and each word is
    # taken whole (the lookahead and backreference make it atomic): linear time, where the plain
    # (?:[\w-]+\.)+ backtracks through a megabyte-long word for minutes
    dotted = re.finditer(r"(?<![\w-])(?:(?=([\w-]+))\1\.)+", text)
    dots = max((m.group(0).count(".") for m in dotted), default=0)
    if max(brackets, dots) > MAX_NESTING:
        raise ConfigError(f"the config file {path} nests too deeply to be settings", fix=fix)
    try:
        config = tomllib.loads(text) if toml else json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(
            f"the config file {path} is not valid {'TOML' if toml else 'JSON'}: {str(exc)[:120]}",
            fix="fix its syntax",
        ) from None
    if not isinstance(config, dict):
        raise ConfigError(
            f"the config file {path} holds a {type(config).__name__}, not a table of settings"
        )
    data = config.get("data")
    if isinstance(data, dict) and data.get("arrays"):
        raise ConfigError(
            f"the run of {path} trained on arrays, which a config file cannot hold",
            fix="train it from Python: Trainer(...).fit(x, y)",
        )
    given = {k: v for k, v in config.items() if k not in RUN_KEYS and k not in RESULT_KEYS}
    unknown(given, f"the config file {path}")
    for key, value in given.items():  # each setting checked here, naming the file
        try:
            SETTINGS[key].coerce(value)
        except ConfigError as exc:
            raise ConfigError(f"the config file {path}: {exc.message}", fix=exc.fix) from None
    options = config.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"the config file {path}: options must be a table of backend options")
    check_options(options, f"the config file {path}")
    workers = config.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise ConfigError(f"the config file {path}: workers must be an integer in 1..1024")
    for key in ("backend", "model", "log"):
        if not isinstance(config.get(key, ""), (str, type(None))):
            raise ConfigError(f"the config file {path}: {key} must be a text")
    return {k: v for k, v in config.items() if k not in RESULT_KEYS}
