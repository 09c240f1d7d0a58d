"""``fmnist layers``: the registered layer types, their plugin, and which backends lower each
(``--check`` imports each backend's lowering tables, so its framework)."""

from __future__ import annotations

from typing import Any

from .common import print_json


def add_arguments(p) -> None:
    p.add_argument(
        "--check", action="store_true", help="also which installed backends lower each type"
    )
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from .. import plugins

    usable = {n: b for n, b in sorted(plugins.backends().items()) if b.unavailable_reason() is None}
    rows = []
    for kind, layer in sorted(plugins.layer_types().items()):
        row: dict[str, Any] = {
            "type": kind,
            "module": layer.__module__,
            "doc": (layer.__doc__ or "").strip().split("\n")[0],
        }
        if args.check:
            row["backends"] = [name for name, backend in usable.items() if _lowers(backend, kind)]
        rows.append(row)
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        lowered = f"  [{', '.join(row['backends'])}]" if args.check else ""
        print(f"{row['type']:<14} {row['doc']}{lowered}")
    return 0


def _lowers(backend, kind: str) -> bool:
    try:
        return backend.lowers(kind)
    except Exception:  # a framework that fails to import lowers nothing
        return False
