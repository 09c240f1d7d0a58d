"""``fmnist evaluate``: a weights file's loss and accuracy on a split."""

from __future__ import annotations

import argparse

from .common import checksum_flags, inference_backend, print_json


def add_arguments(p) -> None:
    p.add_argument("weights")
    p.add_argument(
        "--backend",
        help="the backend to run on (default: NumPy for a small model in a .safetensors file, "
        "which imports no framework; else the one the file records)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=["test", "train", "validation"],
        help="which images to score",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's logits with its mirror image's (default: the recipe's)",
    )
    p.add_argument("--data-dir")
    checksum_flags(p)
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..training.trainer import Trainer

    trainer = Trainer.load(
        args.weights,
        backend=inference_backend(args.weights, args.backend),
        data_dir=args.data_dir,
        verbose=0,
        verify_checksums=not args.skip_checksums,
    )
    result = trainer.evaluate(args.split, tta=args.tta)
    if args.json:
        print_json({"backend": trainer.backend.name, **result.to_dict()})
    else:
        print(
            f"{args.split} accuracy: {result.accuracy * 100:.2f}%, loss: {result.loss:.6f} "
            f"({result.count} images, backend {trainer.backend.name})"
        )
    return 0
