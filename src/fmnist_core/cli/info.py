"""``fmnist info``: the version, where the data is looked for and found, backends, formats."""

from __future__ import annotations

import json

from .common import print_json


def add_arguments(p) -> None:
    p.add_argument("--data-dir")
    p.add_argument(
        "--verify",
        action="store_true",
        help="re-hash the cached arrays against their stored digests (a bad one is deleted and "
        "rebuilt on the next load)",
    )
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    import platform

    from .. import __version__, data, plugins

    try:
        located = data.locate(args.data_dir)
        found = (
            None
            if located is None
            else {"place": located[0], "files": {k: str(v) for k, v in located[1].items()}}
        )
    except Exception as exc:
        found = {"error": str(exc)}
    info = {
        "fmnist_core": __version__,
        "python": platform.python_version(),
        "cache_dir": str(data.cache_dir()),
        "data_search_path": [f"{label}: {path}" for label, path in data.search_path(args.data_dir)],
        "data_found": found,
        "backends": {
            n: (b.unavailable_reason() or b.versions()) for n, b in plugins.backends().items()
        },
        # what each can do here, as `fmnist backends` and `fmnist export --list` say it
        "weight_formats": {
            n: f.unavailable_reason() or "ok" for n, f in sorted(plugins.weight_formats().items())
        },
        "export_targets": {
            n: t.unavailable_reason() or t.runtime
            for n, t in sorted(plugins.export_targets().items())
        },
    }
    if args.verify:
        info["cache_check"] = data.verify_cache(args.data_dir)
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(
                f"{key}: "
                f"{json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}"
            )
    return 0
