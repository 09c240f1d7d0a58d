"""`fmnist compare` and the model card of a run folder."""

import json
import re

import pytest

from fmnist_core import LABELS, ConfigError, Trainer
from fmnist_core.cli import main


def test_compare_writes_its_table_json_and_picture(tmp_path, real_data_dir, capsys):
    out = tmp_path / "compare"
    assert (
        main(
            [
                "compare",
                "--backends",
                "numpy",
                "--epochs",
                "1",
                "--data-dir",
                str(real_data_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    table = captured.out
    assert "  numpy: Epoch 1: loss" in captured.err  # progress while a backend trains
    assert "| numpy |" in table and "max rel. loss diff vs NumPy, first 100 steps" in table
    record = json.loads((out / "compare.json").read_text())
    (row,) = record["rows"]
    assert row["backend"] == "numpy" and row["test_accuracy"] > 0.75 and row["peak_rss_mb"] > 10
    assert row["max_step_loss_difference"] == 0.0  # the reference itself: the same steps
    assert record["epochs"] == 1 and "--epochs 1 --seed 0" in table  # what was run, recorded
    assert (out / "compare.md").read_text() in table and (out / "compare.png").stat().st_size > 1000
    # one epoch has no steady one: its first, compiling epoch is not shown as if it were
    assert row["steady_epoch_seconds"] is None and "| numpy | — |" in table
    assert "one epoch has no steady epoch" in table


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--seed", "-1")])
def test_compare_checks_its_settings_by_the_run_schema(tmp_path, capsys, flag, value):
    assert main(["compare", "--backends", "numpy", flag, value, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert flag.strip("-") in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "compare.md").exists()


def test_compare_refuses_what_does_not_train(tmp_path, capsys):
    assert main(["compare", "--backends", "numpy,nope", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "cannot compare nope" in err and len(err.strip().splitlines()) == 1


def test_a_run_folder_has_a_model_card_and_loads(tmp_path, real_data_dir):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--backend",
                "numpy",
                "--epochs",
                "1",
                "--no-plots",
                "--quiet",
                "--data-dir",
                str(real_data_dir),
                "--out",
                str(run),
            ]
        )
        == 0
    )
    card = (run / "README.md").read_text()
    accuracy = json.loads((run / "evaluation.json").read_text())["accuracy"]
    assert card.startswith("# `mlp` on Fashion-MNIST, trained with numpy")
    assert "15,910 parameters" in card and f"**{accuracy:.4f}**" in card
    assert all(f"| {name} |" in card for name in LABELS)
    assert "Trainer.load('.')" in card and "fmnist convert" in card  # relative: it travels
    loaded = Trainer.load(run, verbose=0, data_dir=real_data_dir)  # a run folder loads as it is
    assert loaded.evaluate().accuracy == accuracy
    assert main(["evaluate", str(run), "--data-dir", str(real_data_dir)]) == 0


HOSTILE_NAME = "x`` <script>alert(1)</script> | ```\n# owned"


def test_model_card_escapes_the_names_users_choose(tmp_path):
    """Model and layer names and descriptions are the user's: HTML, a script tag, a heading, a
    javascript: link, a pipe or a fence in them stay literal text in the run's README.md."""
    from fmnist_core import Dense, Flatten, ModelSpec, ReLU
    from fmnist_core.apps.model_card import model_card
    from fmnist_core.testing import synthetic_dataset
    from fmnist_core.training.trainer import Trainer

    with pytest.raises(ConfigError, match="model name"):  # names are plain names since 0.5
        ModelSpec(HOSTILE_NAME, [Flatten(), Dense(10)])
    spec = ModelSpec(
        "mine",
        [Flatten(), Dense(8), ReLU(), Dense(10)],
        description="<img src=x onerror=alert(1)> [click](javascript:alert(1)) ```",
    )
    trainer = Trainer(backend="numpy", model=spec, data=synthetic_dataset(), verbose=0, epochs=1)
    history = trainer.fit()
    run = tmp_path / "run `x` | <b>"
    card = model_card(run, trainer, trainer.evaluate(), history, 1.0)
    from fmnist_core.apps.model_card import code

    assert card.splitlines()[0] == f"# {code('mine')} on Fashion-MNIST, trained with numpy"
    assert code(HOSTILE_NAME).startswith("````x") and "\n" not in code(HOSTILE_NAME)
    blocks = re.sub(r"(?ms)^(`{3,})[^\n]*\n.*?^\1$", "", card)
    prose = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", blocks)
    assert "<" not in prose and "](javascript:" not in card, prose
    assert not any(line.startswith("# owned") for line in card.splitlines())
    assert blocks.count("## Layers") == 1 and "## Load it" in blocks  # no fence left open
