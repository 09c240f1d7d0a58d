"""What several commands share: JSON output, backend options, and flag helpers."""

from __future__ import annotations

import argparse
import json
import sys

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


def count_or_fraction(text: str) -> int | float:
    """``5000`` or ``0.1``: a count of samples or a fraction of them."""
    value = float(text)
    return value if 0 < value < 1 else int(value)


class Deprecated(argparse.Action):
    """An old flag that still works, with a warning naming the new one."""

    def __call__(self, parser, namespace, values, option_string=None):
        new = "--" + self.dest.replace("_", "-")
        print(
            f"fmnist: warning: {option_string} is now {new}; {option_string} goes in fmnist 0.3",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, True)


def checksum_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-checksums", action="store_true", help="skip the data files' checksums (knowingly)"
    )
    p.add_argument(
        "--no-verify",
        dest="skip_checksums",
        action=Deprecated,
        nargs=0,
        help="deprecated: --skip-checksums",
    )
