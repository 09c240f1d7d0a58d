"""A sweep's space: parsed from `--space` items or a file, checked, given to Ray Tune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import ConfigError

KINDS = {"choice": None, "grid": None, "uniform": 2, "loguniform": 2, "randint": 2}
METRIC = "val_accuracy"


def _trainer_arguments() -> set[str]:
    """What a space may tune: the run's settings (``TrainConfig``), the model, the backend and
    every installed backend's options."""
    from ... import plugins
    from ...training.config import NAMES

    return {*NAMES, "model", "backend"} | {
        o.name for b in plugins.backends().values() for o in b.options
    }


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_space(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=loguniform:0.01:0.5", "batch_size=choice:32,64", "epochs=3"]``: a space."""
    space = {}
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep:
            raise ConfigError(
                f"search space entry {item!r} has no '='",
                fix="write NAME=KIND:ARGS, e.g. lr=loguniform:0.01:0.5",
            )
        kind, colon, args = rest.partition(":")
        if colon and kind in KINDS:
            values = [_value(v) for v in args.replace(",", ":").split(":") if v != ""]
            space[name.strip()] = (kind, *values)
        else:
            space[name.strip()] = _value(rest)
    return space


def load_space_file(path: str | Path) -> dict[str, Any]:
    """A TOML file: ``[space]`` entries as ``name = {loguniform = [0.01, 0.5]}`` or plain values."""
    import tomllib

    from ...atomic import read_user_file

    fix = "write a TOML file with a [space] table"
    text = read_user_file(path, "the search space file", 1 << 20, fix)
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(
            f"the search space file {path} is not TOML: {str(exc)[:120]}", fix=fix
        ) from None
    if not isinstance(data.get("space", {}), dict):
        raise ConfigError(f"the search space file {path}: space must be a table", fix=fix)
    space = {}
    for name, value in data.get("space", {}).items():
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS:
            kind, args = next(iter(value.items()))
            space[name] = (kind, *(args if isinstance(args, list) else [args]))
        else:
            space[name] = value
    return space


def check_space(space: dict[str, Any]) -> None:
    """A one-line ``ConfigError`` for an invalid space, before Ray starts."""
    known = _trainer_arguments()
    for name, value in space.items():
        if name not in known:
            raise ConfigError(
                f"search space: {name!r} is not a Trainer argument or backend option",
                fix=f"use some of {', '.join(sorted(known))}",
            )
        if not (isinstance(value, tuple) and value and value[0] in KINDS):
            continue
        kind, args = value[0], value[1:]
        if KINDS[kind] is None and not args:
            raise ConfigError(
                f"search space: {name}={kind} needs at least one value",
                fix=f"e.g. {name}={kind}:1,2",
            )
        if KINDS[kind] is not None:
            if (
                len(args) != 2
                or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
                or not args[0] < args[1]
            ):
                raise ConfigError(
                    f"search space: {name}={kind} needs two numbers low < high, got {list(args)}",
                    fix=f"e.g. {name}={kind}:0.01:0.5",
                )
            if kind == "loguniform" and args[0] <= 0:
                raise ConfigError(
                    f"search space: {name}=loguniform needs low > 0, got {args[0]}",
                    fix="use a positive low",
                )


def _to_ray(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    makers = {
        "choice": lambda *v: tune.choice(list(v)),
        "grid": lambda *v: tune.grid_search(list(v)),
        "uniform": tune.uniform,
        "loguniform": tune.loguniform,
        "randint": tune.randint,
    }
    return {
        name: makers[v[0]](*v[1:]) if isinstance(v, tuple) and v and v[0] in KINDS else v
        for name, v in space.items()
    }
