"""Tried as a new user would, part 2 (issue 45): output that says what it means, and quiet pipes."""

import subprocess
import sys

from fmnist_core import LABELS


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "fmnist_core.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kwargs)  # fmt: skip


def test_sample_says_the_labels_are_true_labels(tmp_path, real_data_dir):
    out = cli("sample", tmp_path / "s", "--count", "3", "--data-dir", real_data_dir)
    lines = out.stdout.splitlines()
    assert lines[0] == "3 test images written, each with its true label:"
    assert lines[1].endswith("(true label: Ankle Boot, test image 0)")
    header = (tmp_path / "s" / "labels.csv").read_text().splitlines()[0]
    assert header == "file,dataset_index,label"


def test_probabilities_are_every_classs(tmp_path, real_data_dir):
    from fmnist_core import Trainer

    trainer = Trainer("numpy", "mlp", data_dir=real_data_dir, epochs=1, verbose=0)
    trainer.fit()
    weights = trainer.save(tmp_path / "w.safetensors")
    cli("sample", tmp_path / "s", "--count", "2", "--data-dir", real_data_dir)
    out = cli("predict", "--weights", weights, tmp_path / "s", "--probabilities")
    first = out.stdout.splitlines()[0]
    shown = first.split("(", 1)[1].rstrip(")").split(", ")
    assert [item.rsplit(" ", 1)[0] for item in shown] == list(LABELS)
    assert abs(sum(float(item.rsplit(" ", 1)[1]) for item in shown) - 1) < 0.01


def test_a_closed_pipe_ends_quietly(tmp_path, real_data_dir):
    from fmnist_core import Trainer

    weights = Trainer("numpy", "mlp", verbose=0).save(tmp_path / "w.safetensors")
    cli("sample", tmp_path / "s", "--count", "2500", "--data-dir", real_data_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "fmnist_core.cli", "predict", "--weights", str(weights),
         str(tmp_path / "s")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout.readline()  # the reader takes one line and goes, as `head -1` does
    process.stdout.close()
    try:
        error = process.stderr.read().decode()
        code = process.wait(timeout=300)
    finally:
        process.kill()
    assert error == "" and code in (0, 141), (code, error)


def test_history_holds_plain_numbers_and_counts_epochs_as_keras_does(real_data_dir):
    from fmnist_core import Trainer

    trainer = Trainer("numpy", "mlp", data_dir=real_data_dir, epochs=2, verbose=0)
    history = trainer.fit()
    assert [record.epoch for record in history] == [0, 1]  # Keras' History.epoch
    for record in [*history.epochs, *history.progress]:
        for name, value in vars(record).items():
            assert value is None or type(value) in (int, float), (name, type(value))


def test_the_card_travels_reads_plainly_and_links_what_report_draws(tmp_path, real_data_dir):
    run = tmp_path / "run"
    cli("train", "--backend", "numpy", "--epochs", "1", "--no-plots", "--out", run,
        "--data-dir", real_data_dir)  # fmt: skip
    card = (run / "README.md").read_text()
    assert str(tmp_path) not in card  # "Load it" names the folder's own files
    assert "Trainer.load('.')" in card and "`fmnist evaluate .`" in card
    assert "\\-" not in card and "\\(" not in card  # plain text reads as written
    with open(run / "README.md", "a") as handle:
        handle.write("\nMy notes stay.\n")
    for _ in range(2):
        out = cli("report", run)
        assert out.returncode == 0, out.stderr
    card = (run / "README.md").read_text()
    assert card.count("## Pictures") == 1 and "My notes stay." in card
    for name in ("confusion", "curves", "predictions"):
        assert card.count(f"]({name}.png)") == 1 and (run / f"{name}.png").is_file()


def test_info_says_what_each_format_and_target_can_do_here():
    import json

    out = cli("info", "--json")
    info = json.loads(out.stdout)
    assert info["weight_formats"]["safetensors"] == "ok"
    from fmnist_core import plugins

    assert set(info["export_targets"]) == set(plugins.export_targets())
    if plugins.weight_formats()["onnx"].unavailable_reason():  # tests-core: no onnx package
        assert info["weight_formats"]["onnx"].startswith("needs onnx")


def test_one_extra_name_per_capability():
    """`fmnist-core[onnx]` is all of ONNX: writing .onnx, running and serving it, the export
    targets (fmnist-onnx); no second name for part of it."""
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["onnx"] == ["fmnist-onnx==" + extras["torch"][0].split("==")[1]]
    assert "onnxruntime" not in extras
    plugin = tomllib.loads((root / "plugins/fmnist_onnx/pyproject.toml").read_text())
    needs = plugin["project"]["dependencies"]
    assert any(d.startswith("onnx>=") for d in needs)
    assert any(d.startswith("onnxruntime") for d in needs)


def test_predict_results_know_their_images(tmp_path, real_data_dir):
    from fmnist_core import Trainer

    trainer = Trainer("numpy", "mlp", verbose=0)
    cli("sample", tmp_path / "s", "--count", "3", "--data-dir", real_data_dir)
    single = tmp_path / "s" / "00000-ankle-boot.png"
    results = trainer.predict([single, tmp_path / "s"])
    assert len(results) == 4 and isinstance(results, list)  # a plain list of labels, as before
    assert results.paths[0] == str(single) and results.paths[1].endswith("00000-ankle-boot.png")
    by_path = results.by_path()
    assert list(by_path)[-1].endswith("00002-trouser.png") and by_path[str(single)] == results[0]


def test_models_are_listed_from_smallest_up_each_with_a_measured_line():
    out = cli("models").stdout.splitlines()
    names = [line.split()[0] for line in out if line and not line.startswith(" ")]
    assert names[:5] == ["mlp", "cnn", "fast", "balanced", "accurate"]
    assert sum(line.strip().startswith("measured:") for line in out) == len(names)


def test_curves_are_titled_with_the_run_not_its_folder(tmp_path, real_data_dir):
    from fmnist_core.apps import plots

    run = tmp_path / "some-folder-name"
    cli("train", "--backend", "numpy", "--epochs", "1", "--no-plots", "--out", run,
        "--data-dir", real_data_dir)  # fmt: skip
    titles = []
    original = plots.curves_figure

    def spy(history, test=None, title=""):
        titles.append(title)
        return original(history, test, title)

    plots.curves_figure = spy
    try:
        plots.draw_run(run, test_set=False)
    finally:
        plots.curves_figure = original
    assert titles == ["mlp on numpy, 1 epoch"]
