"""``fmnist models``: the recipes, their parameter counts, recipes and (``-v``) layers."""

from __future__ import annotations

from .common import print_json


def add_arguments(p) -> None:
    p.add_argument(
        "--verbose", "-v", action="store_true", help="also each model's layers and shapes"
    )
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..plugins import models

    registered = sorted(models().items())
    rows = [
        {
            "name": name,
            "parameters": spec.count_params(),
            "layers": len(spec.layers),
            "description": spec.description,
            "recipe": {
                "epochs": spec.recipe.epochs,
                "batch_size": spec.recipe.batch_size,
                "learning_rate": spec.recipe.learning_rate,
                "optimizer": str(spec.recipe.optimizer),
                "schedule": str(spec.recipe.schedule),
            },
            "architecture": spec.to_dict()["layers"],
        }
        for name, spec in registered
    ]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        r = row["recipe"]
        print(f"{row['name']:<8} {row['parameters']:>8,} parameters  {row['description']}")
        print(
            f"{'':<8} recipe: {r['optimizer']} lr {r['learning_rate']}, {r['schedule']} schedule, "
            f"batch {r['batch_size']}, {r['epochs']} epochs"
        )
    if args.verbose:
        for name, spec in registered:
            print(f"\n{name}:\n{spec.summary()}")
    return 0
