"""`fmnist compare` and the model card of a run folder."""

import json

from fmnist_core import LABELS, Trainer
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
    table = capsys.readouterr().out
    assert "| numpy |" in table and "max rel. loss diff vs NumPy, first 100 steps" in table
    record = json.loads((out / "compare.json").read_text())
    (row,) = record["rows"]
    assert row["backend"] == "numpy" and row["test_accuracy"] > 0.75 and row["peak_rss_mb"] > 10
    assert row["max_step_loss_difference"] == 0.0  # the reference itself: the same steps
    assert (out / "compare.md").read_text() in table and (out / "compare.png").stat().st_size > 1000


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
    assert f'Trainer.load("{run}")' in card and "fmnist convert" in card
    loaded = Trainer.load(run, verbose=0, data_dir=real_data_dir)  # a run folder loads as it is
    assert loaded.evaluate().accuracy == accuracy
    assert main(["evaluate", str(run), "--data-dir", str(real_data_dir)]) == 0
