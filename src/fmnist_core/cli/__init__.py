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
        explain(p)
    return parser


# the help of options many commands share, where a command gave none
COMMON_HELP = {
    "--json": "print JSON instead of text",
    "--quiet": "print nothing but errors",
    "--data-dir": "folder of the four Fashion-MNIST IDX files (default: as `fmnist info` finds)",
    "--backend": "the backend to run on (`fmnist backends` lists them)",
    "--seed": "seed of the weights, order and augmentation",
    "--weights": "a weights file (.safetensors, .onnx, or a format of an installed plugin)",
    "weights": "a weights file (.safetensors, .onnx, or a format of an installed plugin)",
    "source": "the weights file to read",
    "target": "the file to write; its suffix names the format unless --to does",
    "images": "image files or folders of them (PNG, JPEG, ...)",
}


def explain(parser: argparse.ArgumentParser) -> None:
    """Give every option of ``parser`` a help text (``COMMON_HELP`` where its command gave
    none) and show each non-trivial default."""
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = max(action.option_strings, key=len) if action.option_strings else action.dest
        if not action.help:
            action.help = COMMON_HELP.get(name, action.help)
        shown = action.default not in (None, False, argparse.SUPPRESS, [])
        if action.help and shown and "default" not in action.help:
            action.help += " (default: %(default)s)"


EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a Unix tool whose reader went away."""


def _quiet_after_broken_pipe() -> int:
    """Say nothing more: point stdout at /dev/null so that Python's own flush at exit does not
    print a second error, as Python's documentation advises for SIGPIPE."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


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
    except BrokenPipeError:  # `fmnist predict ... | head`: the reader has what it wanted
        return _quiet_after_broken_pipe()
    except OSError as exc:  # anything the system refused that no fmnist check named first
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fmnist: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("fmnist: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
