import importlib
import subprocess
import sys

import pytest

HEAVY = ("torch", "tensorflow", "keras", "jax", "matplotlib")


def test_import_and_listing_load_no_framework():
    code = (
        "import sys, fmnist_core; fmnist_core.backends(); fmnist_core.weight_formats(); "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importtime_shows_no_framework():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import fmnist_core"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line
    }
    assert not imported & set(HEAVY)


@pytest.mark.parametrize(
    "old",
    [
        "fmnist_core.models",
        "fmnist_core.trainer",
        "fmnist_core.weights",
        "fmnist_core.backend",
        "fmnist_core.iteration",
        "fmnist_core.tune",
        "fmnist_core.tracking",
        "fmnist_core.optimizers",
        "fmnist_core._moved",
    ],
)
def test_fmnist_0_2_module_paths_are_gone(old):
    # 0.4 keeps no shims (CHANGELOG.md): an old path is an ImportError, not a warning
    with pytest.raises(ImportError):
        importlib.import_module(old)


def test_no_import_cycle_in_the_core():
    # imports inside functions and under TYPE_CHECKING count: grimp sees them all
    grimp = pytest.importorskip("grimp", reason="needs grimp (import-linter installs it)")
    graph = grimp.build_graph("fmnist_core")
    modules = sorted(graph.modules)
    cycles = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(module + "."):
                continue  # a package importing its own modules
            if module.startswith(imported + "."):
                continue  # a module importing from its package's __init__
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain and not any(
                b.startswith(a + ".") or a.startswith(b + ".")
                for a, b in zip(chain, chain[1:], strict=False)
            ):
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == []


def test_no_framework_code_in_the_core():
    # outside fmnist_core.testing, no module of the core imports a framework (issue 22's check):
    # import statements as Python parses them, so `fmnist eject`'s program text does not count
    import ast
    from pathlib import Path

    core = Path(__file__).resolve().parents[2] / "src" / "fmnist_core"
    frameworks = {"tensorflow", "torch", "keras", "jax"}

    def imported(tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                yield from (alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                yield node.module.split(".")[0]

    offenders = [
        str(p.relative_to(core))
        for p in core.rglob("*.py")
        if "testing" not in p.parts and frameworks & set(imported(ast.parse(p.read_text())))
    ]
    assert offenders == []
    shared = (core / "apps" / "eject" / "common.py").read_text()
    assert "import torch" not in shared  # each framework's program text is its plugin's


def test_every_built_in_layer_is_exported_by_its_name():
    import fmnist_core
    from fmnist_core.spec.layers import BUILTIN_LAYERS

    for name, layer in BUILTIN_LAYERS.items():
        assert getattr(fmnist_core, name) is layer and name in fmnist_core.__all__
