"""``fmnist export``: weights for serving without a framework (ONNX)."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("weights")
    p.add_argument("target", help="e.g. model.onnx")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="what to write")


def run(args) -> int:
    from ..training.trainer import Trainer

    trainer = Trainer.load(args.weights, verbose=0)
    trainer.export(args.target, format=args.format)
    print(f"wrote {args.target} ({args.format}) from {args.weights}")
    return 0
