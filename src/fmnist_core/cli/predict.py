"""``fmnist predict``: classify image files and folders of images."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_ERROR, inference_backend, print_json


def add_arguments(p) -> None:
    p.add_argument("--weights", required=True)
    p.add_argument("images", nargs="+")
    p.add_argument(
        "--backend",
        help="the backend to run on (default: NumPy for a small model in a .safetensors file, "
        "which imports no framework; else the one the file records)",
    )
    p.add_argument("--probabilities", action="store_true", help="print each class's probability")
    p.add_argument("--grid", metavar="PNG", help="also draw the images with their predictions")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="predict every readable image, report the bad ones, exit 1 at the end if any",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse images declaring more pixels (default 40,000,000)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's logits with its mirror image's (default: the recipe's)",
    )
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from dataclasses import replace

    from ..apps.exported import open_model
    from ..data.images import collect_image_paths, read_images

    trainer = open_model(args.weights, inference_backend(args.weights, args.backend))
    listed = collect_image_paths(args.images)
    # read once: for the predictions and the grid
    paths, images, bad = read_images(
        listed, max_pixels=args.max_pixels, on_error="skip" if args.keep_going else "raise"
    )
    predictions = (
        [
            replace(p, path=str(path))
            for p, path in zip(
                trainer.predict(images, output="predictions", tta=args.tta), paths, strict=True
            )
        ]
        if len(images)
        else []
    )
    if args.grid and len(images):
        from ..apps.plots import predictions_figure, save_figure

        save_figure(
            predictions_figure(
                images, [p.index for p in predictions], names=[p.name for p in paths]
            ),
            args.grid,
        )
    if args.json:
        rows = [
            {
                "path": p.path,
                "index": p.index,
                "label": p.label,
                **({"probabilities": list(p.probabilities)} if args.probabilities else {}),
            }
            for p in predictions
        ]
        rows += [{"path": str(b.path), "error": b.error} for b in bad]
        position = {str(path): number for number, path in enumerate(listed)}
        print_json(sorted(rows, key=lambda row: position[row["path"]]))
    else:
        from ..labels import LABELS

        for p in predictions:
            extra = ""
            if args.probabilities:  # every class's, in the labels' order
                extra = (
                    "  ("
                    + ", ".join(
                        f"{name} {value:.3f}"
                        for name, value in zip(LABELS, p.probabilities, strict=True)  # fmt: skip
                    )
                    + ")"
                )
            print(f"{p.path}: {p.label}{extra}")
        for b in bad:
            print(f"fmnist: error: {b.error}", file=sys.stderr)
    if bad:
        print(
            f"fmnist: error: {len(bad)} of {len(bad) + len(predictions)} images could not be read",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0
