"""`fmnist eject`'s pages in docs/ejected/ are what it writes today; its programs are ruff-clean
(ruff's own defaults, as a user would check them) and, for the article's recipe, recognisably the
article's: the same functions and the same printed lines."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_core import Dense, Flatten, ModelSpec, Trainer
from fmnist_core.apps.eject import FRAMEWORKS, eject, pages

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_side_by_side_pages_in_docs_are_current(model, tmp_path):
    written = pages(Trainer(backend="numpy", model=model, verbose=0), tmp_path)
    for path in written:
        shipped = REPO / "docs" / "ejected" / path.name
        assert shipped.read_text() == path.read_text(), (
            f"docs/ejected/{path.name} is out of date: regenerate it with "
            "fmnist_core.apps.eject.pages"
        )


@pytest.fixture(scope="module")
def ejected(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ejected")
    for model in ("mlp", "fast", "accurate"):
        eject(Trainer(backend="numpy", model=model, verbose=0), list(FRAMEWORKS), folder / model)
    return folder


def test_every_program_is_ruff_clean(ejected):
    ruff = shutil.which("ruff")
    assert ruff, "nox -s tests-docs installs ruff"
    programs = sorted(ejected.rglob("*.py"))
    assert len(programs) == 9
    done = subprocess.run(
        [ruff, "check", "--isolated", "--no-cache", *map(str, programs)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    for program in programs:
        compile(program.read_text(), str(program), "exec")


def test_the_article_recipe_reads_as_the_article(ejected):
    functions = ["get_data", "fit", "evaluate", "training_phase", "inference_phase"]
    for framework in FRAMEWORKS:
        text = (ejected / "mlp" / framework / "mlp.py").read_text()
        for name in functions + ([] if framework == "keras" else ["fit_one_batch", "predict"]):
            assert f"\ndef {name}(" in text, (framework, name)
        assert "NeuralNetwork" in text and "labels_map = {" in text
        assert "print(f'[Batch {batch_index + 1:>3d} - {current_item_count:>5d} items]" in text
        assert (
            "print('\\nFitting:')" in text and "Test accuracy: {test_accuracy * 100:>0.1f}%" in text
        )
    torch_text = (ejected / "mlp" / "torch" / "mlp.py").read_text()
    assert "nn.Linear(28*28, 20)" in torch_text and "optimizer.zero_grad()" in torch_text
    assert "tf.GradientTape()" in (ejected / "mlp" / "tf" / "mlp.py").read_text()
    assert "model.compile(" in (ejected / "mlp" / "keras" / "mlp.py").read_text()


def test_cli_writes_one_framework_and_refuses_what_it_cannot(tmp_path, capsys):
    from fmnist_core.cli import main

    assert main(["eject", "--model", "cnn", "--to", "torch", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "torch").iterdir()) == [
        "batches.npz", "cnn.py", "initial.pth"
    ]  # fmt: skip
    assert "python" in capsys.readouterr().out
    assert main(["eject", "--out", str(tmp_path)]) == 1
    assert "needs a run folder or --model" in capsys.readouterr().err
    spec = tmp_path / "odd.json"
    spec.write_text('{"name": "odd", "layers": [{"kind": "Flatten"}, {"kind": "Swish"}]}')
    code = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "eject", "--model", str(spec), "--out",
         str(tmp_path / "odd")], capture_output=True, text=True,
    )  # fmt: skip
    assert code.returncode == 1 and "Traceback" not in code.stderr, code.stderr


@pytest.mark.parametrize("framework", ["torch", "tf", "keras"])
def test_a_description_is_text_in_every_program(framework):
    """A description (a plugin's, a shared file's) closing the docstring stays in the docstring:
    the program parses, and its only calls are the template's (issue 42; here since each program's
    text is its plugin's)."""
    from fmnist_core.apps.eject import plan, program_text, sections_of

    hostile = 'x"""\nimport os; os.system("echo owned")\n"""\\'
    spec = ModelSpec("m", [Flatten(), Dense(16), Dense(10)], description=hostile)
    text = program_text(
        sections_of(framework, plan(Trainer(backend="numpy", model=spec, verbose=0)))
    )
    tree = ast.parse(text)
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "system" not in calls
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert any(isinstance(t, str) and hostile in t for t in texts)  # kept whole, as text
