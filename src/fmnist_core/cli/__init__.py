"""The ``fmnist`` command line. Each subcommand is a ``Command`` registered through the
``fmnist_commands`` hook (the built-ins by ``fmnist_core.builtin.commands``, one module each
here: ``add_arguments(parser)`` and ``run(args) -> int``); a plugin adds its own the same way.

Errors print as one line on stderr (``--debug`` shows the traceback). Exit codes: 0 success,
1 an fmnist error (bad input, missing data, unknown backend), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
    from .. import __version__, plugins

    parser = argparse.ArgumentParser(
        prog="fmnist",
        description="Train, evaluate and serve Fashion-MNIST classifiers on any framework.",
    )
    parser.add_argument("--version", action="version", version=f"fmnist {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in plugins.commands().values():
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``fmnist ARGV``; returns the exit code."""
    from ..errors import FmnistError

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except FmnistError as exc:
        if args.debug:
            raise
        print(f"fmnist: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # anything the system refused that no fmnist check named first
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fmnist: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fmnist: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
