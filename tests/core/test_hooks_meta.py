"""Every hook is documented in its spec and in docs/plugins.md, and exercised by the tests."""

import inspect
from pathlib import Path

from fmnist_core import hookspecs

REPO = Path(__file__).resolve().parents[2]


def hook_names():
    return [
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("fmnist_")
    ]


def test_hooks_exist():
    assert hook_names() == [
        "fmnist_backends",
        "fmnist_commands",
        "fmnist_ejections",
        "fmnist_export_targets",
        "fmnist_layers",
        "fmnist_lowerings",
        "fmnist_models",
        "fmnist_weight_formats",
    ]


def test_every_hook_documented():
    guide = (REPO / "docs" / "plugins.md").read_text()
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert f"`{name}`" in guide, f"{name} missing from docs/plugins.md"


def test_every_hook_tested():
    sources = "\n".join(
        p.read_text() for p in (REPO / "tests").rglob("test_*.py") if p.name != Path(__file__).name
    )
    sources += (REPO / "src" / "fmnist_core" / "testing" / "__init__.py").read_text()
    callers = {
        "fmnist_backends": "backends()",
        "fmnist_models": "models()",
        "fmnist_weight_formats": "weight_formats()",
        "fmnist_layers": "layer_types()",
        "fmnist_lowerings": "lowers(",
        "fmnist_commands": "commands()",
        "fmnist_export_targets": "export_targets()",
        "fmnist_ejections": "ejectable_frameworks()",
    }
    for name in hook_names():
        assert callers[name] in sources, f"no test exercises {name}"
