"""``fmnist compare``: one recipe on every installed training backend, side by side."""

from __future__ import annotations

from .common import print_json


def add_arguments(p) -> None:
    p.add_argument("--model", default="mlp", help="a recipe from `fmnist models` (default mlp)")
    p.add_argument(
        "--backends", help="comma-separated (default: every installed backend that trains)"
    )
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", default="compare", help="folder for compare.md, .json, .png and the runs"
    )
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..apps.compare import compare

    backends = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else None
    rows = compare(
        args.model,
        backends,
        seed=args.seed,
        epochs=args.epochs,
        out=args.out,
        data_dir=args.data_dir,
    )
    if args.json:
        print_json(rows)
    else:
        from pathlib import Path

        print((Path(args.out) / "compare.md").read_text())
    return 0
