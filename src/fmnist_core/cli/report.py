"""``fmnist report``: (re)draw run folders' pictures; with several runs, a comparison."""

from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", help="run folders written by fmnist train")
    p.add_argument(
        "--compare", metavar="PNG", help="comparison picture (default comparison.png with 2+ runs)"
    )


def run(args) -> int:
    from ..apps.model_card import link_pictures
    from ..apps.plots import comparison_figure, draw_run, load_run, save_figure

    runs = {}
    for folder in map(Path, args.runs):
        history, evaluation, config = load_run(folder)
        for path in draw_run(folder):
            print(f"wrote {path}")
        link_pictures(folder)
        backend = config.get("backend", "?")
        name = folder.name if folder.name == backend else f"{folder.name} ({backend})"
        runs[name] = (history, evaluation.get("accuracy"))
    if len(runs) > 1 or args.compare:
        target = Path(args.compare or "comparison.png")
        save_figure(comparison_figure(runs), target)
        print(f"wrote {target}")
    return 0
