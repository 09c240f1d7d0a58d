"""``fmnist backends``: installed backends, their options, and plugins that failed to load."""

from __future__ import annotations

from .common import print_json


def add_arguments(p) -> None:
    p.add_argument("--check", action="store_true", help="import each framework and build a model")
    p.add_argument("--options", action="store_true", help="also each backend's options")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from .. import plugins
    from ..engine.backend import EngineConfig
    from ..training.config import TrainConfig

    rows = []
    registered = sorted(plugins.backends().items())
    for name, backend in registered:
        reason = backend.unavailable_reason()
        if reason is None and args.check:
            try:
                backend.versions()
                mlp = plugins.get_model("mlp")
                backend.create_engine(EngineConfig(mlp, TrainConfig().resolve(mlp.recipe)))
            except Exception as exc:  # report, keep listing the others
                reason = f"{type(exc).__name__}: {exc}"
        rows.append(
            {
                "name": name,
                "available": reason is None,
                "reason": reason,
                "priority": backend.priority,
                "options": [
                    {
                        "name": o.name,
                        "type": getattr(o.type, "__name__", str(o.type)),
                        "default": o.default,
                        "choices": list(o.choices),
                        "help": o.help,
                    }
                    for o in backend.options
                ],
                "description": backend.description,
            }
        )
    failures = [
        {"plugin": f.name, "entry_point": f.value, "error": f.error}
        for f in plugins.plugin_failures()
    ]
    if args.json:
        print_json({"backends": rows, "failed_plugins": failures})
        return 0
    for row, (_, backend) in zip(rows, registered, strict=True):
        state = "ok" if row["available"] else f"unavailable: {row['reason']}"
        print(f"{row['name']:<8} {state:<12} {row['description']}")
        if args.options:
            for option in backend.options:
                print(f"{'':<10}{option.describe()}")
    for failure in failures:
        print(f"plugin {failure['plugin']!r} failed to load: {failure['error']}")
    return 0
