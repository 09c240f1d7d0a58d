"""``fmnist evaluate``: a weights file's loss and accuracy on a split."""

from __future__ import annotations

import argparse

from .common import checksum_flags, inference_backend, print_json


def add_arguments(p) -> None:
    p.add_argument("weights", help="weights, a run folder, or an export (.onnx, .int8.onnx, "
                   ".pt2, .tflite, a web folder), each run by its own runtime")  # fmt: skip
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
    from ..apps.exported import ExportedModel, open_model, recorded_gate

    model = open_model(
        args.weights,
        inference_backend(args.weights, args.backend),
        data_dir=args.data_dir,
        verify_checksums=not args.skip_checksums,
    )
    if isinstance(model, ExportedModel):
        result = model.evaluate(
            args.split, tta=args.tta, data_dir=args.data_dir,
            verify_checksums=not args.skip_checksums,
        )  # fmt: skip
    else:
        result = model.evaluate(args.split, tta=args.tta)
    gate = recorded_gate(model)
    if args.json:
        print_json({"backend": model.backend.name, **result.to_dict(),
                    **({"gate": gate} if gate else {})})  # fmt: skip
    else:
        print(
            f"{args.split} accuracy: {result.accuracy * 100:.2f}%, loss: {result.loss:.6f} "
            f"({result.count} images, backend {model.backend.name})"
        )
        if gate.get("export_accuracy") is not None:
            print(
                f"its export gate measured {gate['export_accuracy'] * 100:.2f}% on the test set "
                f"without TTA (the source: {gate.get('source_accuracy', 0) * 100:.2f}%)"
            )
    return 0
