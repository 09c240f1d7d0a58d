"""What several commands share: JSON output, backend options, and flag helpers."""

from __future__ import annotations

import argparse
import json

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def backend_options(args) -> dict:
    """``--option KEY=VALUE`` (values read as JSON when they parse) and ``--device``."""
    options = {}
    for item in getattr(args, "option", None) or []:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if getattr(args, "device", None):
        options["device"] = args.device
    return options


def checksum_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-checksums", action="store_true", help="skip the data files' checksums (knowingly)"
    )


def inference_backend(weights: str, asked: str | None) -> str | None:
    """The backend to predict or evaluate with: the one asked for; else, for a small model (the
    article's MLP and the like) in the neutral format, NumPy, which imports no framework (issue
    33 measured 0.34 s for one image against 3.4 s through torch); else None, the file's own.
    The file is read here and again by ``Trainer.load``: a small safetensors file, read twice."""
    if asked:
        return asked
    from ..errors import FmnistError
    from ..io.formats import read_weights
    from ..io.weights import architecture_of
    from ..training.checkpoints import weights_in

    path = weights_in(weights)
    if not str(path).endswith(".safetensors"):
        return None
    try:
        small = architecture_of(read_weights(path)).is_small()
    except FmnistError:
        return None  # Trainer.load names what is wrong with the file
    return "numpy" if small else None
