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
    "old, name, new",
    [
        ("fmnist_core.models", "ModelSpec", "fmnist_core.spec.model"),
        ("fmnist_core.models", "Conv2D", "fmnist_core.spec.layers"),
        ("fmnist_core.trainer", "Trainer", "fmnist_core.training.trainer"),
        ("fmnist_core.trainer", "model_of", "fmnist_core.io.weights"),
        ("fmnist_core.weights", "lazy", "fmnist_core.plugins"),
        ("fmnist_core.backend", "shard", "fmnist_core.engine.batching"),
        ("fmnist_core.iteration", "pad_block", "fmnist_core.engine.batching"),
        ("fmnist_core.tune", "run_sweep", "fmnist_core.apps.tune"),
        ("fmnist_core.tracking", "CSVLogger", "fmnist_core.training.tracking"),
        ("fmnist_core.optimizers", "Optimizer", "fmnist_core.spec.optimizers"),
    ],
)
def test_old_module_paths_still_work_with_a_warning(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} is now {new}"):
        value = getattr(module, name)
    assert (
        value.__module__.startswith(new)
        or getattr(importlib.import_module(new), value.__name__) is value
    )
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_no_framework_code_in_the_core():
    # outside fmnist_core.testing, no module of the core imports a framework (issue 22's grep)
    import re
    from pathlib import Path

    core = Path(__file__).resolve().parents[2] / "src" / "fmnist_core"
    pattern = re.compile(r"^\s*(import|from) (tensorflow|torch|keras|jax)\b", re.M)
    offenders = [
        str(p.relative_to(core))
        for p in core.rglob("*.py")
        if "testing" not in p.parts and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_type_checkers_see_every_built_in_layer():
    # fmnist_core adds the layer types from the registry at run time; its TYPE_CHECKING block
    # names them for type checkers, and must name exactly those
    import ast
    from pathlib import Path

    import fmnist_core
    from fmnist_core.spec.layers import BUILTIN_LAYERS

    tree = ast.parse(Path(fmnist_core.__file__).read_text())
    block = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    named = {alias.name for node in block.body for alias in node.names}
    assert named == set(BUILTIN_LAYERS)
    assert all(getattr(fmnist_core, name) is BUILTIN_LAYERS[name] for name in named)
