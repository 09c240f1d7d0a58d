"""``fmnist models``: the recipes, their parameter counts, recipes, measured figures and
(``-v``) layers."""

from __future__ import annotations

import json
from importlib import resources

from .common import print_json


def measured() -> dict:
    """The built-in recipes' figures from ``bench/speedrun.py --record``: per recipe and backend,
    the mean final test accuracy over seeds, its spread, the fit time, and where measured."""
    try:
        text = resources.files("fmnist_core.builtin").joinpath("measured.json").read_text()
        figures = json.loads(text)
    except (OSError, ValueError):
        return {}
    return figures if isinstance(figures, dict) else {}


def _measured_line(figures: dict) -> str:
    parts = []
    for backend, f in sorted(figures.items()):
        ratio = f.get("reference_ratio")
        parts.append(
            f"{backend} {f['accuracy']:.4f} ± {f['accuracy_sd']:.4f} ({f['seeds']} seeds) in "
            f"{f['fit_seconds']:g} s"
            + (f" ({ratio:g}× the plain-PyTorch cnn's fit)" if ratio else "")
        )
    first = next(iter(figures.values()))
    return "; ".join(parts) + f" [{first['machine']}, {first['date']}]"


def add_arguments(p) -> None:
    p.add_argument(
        "--verbose", "-v", action="store_true", help="also each model's layers and shapes"
    )
    p.add_argument("--json", action="store_true")


def given(spec, name: str):
    """What ``spec``'s recipe gives setting ``name`` (the article's where it gives none)."""
    from ..training.config import SETTINGS

    return spec.recipe.get(name, SETTINGS[name].fallback)


def _name(value) -> str:
    """An optimizer or schedule as its name (and non-default settings)."""
    if isinstance(value, str):
        return value
    settings = {k: v for k, v in value.to_dict().items() if k != "kind"}
    return value.kind + (f" {settings}" if settings else "")


def run(args) -> int:
    from ..data.augment import as_augment
    from ..plugins import models

    registered = list(models().items())  # as registered: the built-ins from smallest up
    figures = measured()
    rows = [
        {
            "name": name,
            "parameters": spec.count_params(),
            "layers": len(spec.layers),
            "description": spec.description,
            "recipe": {
                "epochs": given(spec, "epochs"),
                "batch_size": given(spec, "batch_size"),
                "learning_rate": given(spec, "learning_rate"),
                "optimizer": _name(given(spec, "optimizer")),
                "schedule": _name(given(spec, "schedule")),
                "augment": str(as_augment(given(spec, "augment"))),
                "label_smoothing": given(spec, "label_smoothing"),
                "ema": given(spec, "ema"),
                "tta": given(spec, "tta"),
            },
            "architecture": spec.to_dict()["layers"],
            "measured": figures.get(name, {}),
        }
        for name, spec in registered
    ]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        r = row["recipe"]
        print(f"{row['name']:<8} {row['parameters']:>8,} parameters  {row['description']}")
        extras = [f"augment {r['augment']}"] if r["augment"] != "none" else []
        extras += [f"label smoothing {r['label_smoothing']:g}"] if r["label_smoothing"] else []
        extras += [f"ema {r['ema']:g}"] if r["ema"] else []
        extras += ["tta"] if r["tta"] else []
        print(
            f"{'':<8} recipe: {r['optimizer']} lr {r['learning_rate']}, {r['schedule']} schedule, "
            f"batch {r['batch_size']}, {r['epochs']} epochs" + "".join(f", {e}" for e in extras)
        )
        if row["measured"]:
            print(f"{'':<8} measured: {_measured_line(row['measured'])}")
        else:
            print(f"{'':<8} measured: not yet (nox -s speedrun -- --recipes {row['name']} "
                  "--record)")  # fmt: skip
    if args.verbose:
        for name, spec in registered:
            print(f"\n{name}:\n{spec.summary()}")
    return 0
