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
