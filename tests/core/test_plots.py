import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fmnist_core import FmnistError, Trainer
from fmnist_core.testing import synthetic_dataset
from fmnist_core.training.metrics import EvalResult


def check_png(path, min_size=(300, 200)):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1], image.size


def test_confusion_matrix_drawn_matches_numbers():
    from fmnist_core.apps.plots import confusion_figure

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    predicted = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 10, 500))
    result = EvalResult.from_logits(np.eye(10)[predicted], labels)
    fig = confusion_figure(result.confusion)
    ax = fig.axes[0]
    drawn = np.array([int(t.get_text()) for t in ax.texts]).reshape(10, 10)
    np.testing.assert_array_equal(drawn, result.confusion)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), result.confusion)
    assert [t.get_text() for t in ax.get_xticklabels()][9] == "Ankle Boot"
    assert f"{result.accuracy * 100:.2f}%" in ax.get_title()


def test_prediction_grid_marks_mistakes():
    from fmnist_core.apps.plots import predictions_figure

    images = synthetic_dataset().test.images[:10]
    fig = predictions_figure(images, [0] * 10, truth=[0] * 7 + [1] * 3)
    texts = fig.axes[0].texts
    red = [t for t in texts if t.get_color() == "tab:red"]
    assert len(texts) == 10 and len(red) == 3 and "true: Trouser" in red[0].get_text()
    assert fig.axes[0].get_title() == "7/10 right; mistakes in red"


def test_run_folder_pictures_and_report(tmp_path, real_data_dir):
    runs = []
    for backend_seed in (0, 1):
        run = tmp_path / f"run{backend_seed}"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "fmnist_core.cli",
                "train",
                "--backend",
                "numpy",
                "--epochs",
                "2",
                "--seed",
                str(backend_seed),
                "--out",
                str(run),
                "--data-dir",
                str(real_data_dir),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert len(json.loads(out.stdout)["pictures"]) == 3
        for name in ("curves.png", "confusion.png", "predictions.png"):
            check_png(run / name)
        runs.append(run)
    (runs[0] / "curves.png").unlink()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "report",
            *map(str, runs),
            "--compare",
            str(tmp_path / "cmp.png"),
        ],
        check=True,
        capture_output=True,
    )
    check_png(runs[0] / "curves.png")
    check_png(tmp_path / "cmp.png")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "sample",
            str(tmp_path / "samples"),
            "--count",
            "200",
            "--data-dir",
            str(real_data_dir),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "predict",
            "--weights",
            str(runs[0] / "weights.safetensors"),
            str(tmp_path / "samples"),
            "--grid",
            str(tmp_path / "grid.png"),
        ],
        check=True,
        capture_output=True,
    )
    check_png(tmp_path / "grid.png", (600, 600))


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    from fmnist_core.apps import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(FmnistError, match=r"fmnist-core\[plots\]"):
        plots.confusion_figure(np.eye(10, dtype=int))


def test_curves_from_history():
    from fmnist_core.apps.plots import curves_figure

    trainer = Trainer(
        backend="numpy", data=synthetic_dataset(), epochs=2, verbose=0, evaluate_each_epoch=True
    )
    fig = curves_figure(trainer.fit())
    loss_ax = fig.axes[0]
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert labels == ["running mean within epoch", "epoch mean", "test"]


def test_report_on_damaged_or_foreign_folder_is_one_line(tmp_path):
    (tmp_path / "history.json").write_text('{"epochs": [')
    (tmp_path / "evaluation.json").write_text("{}")
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "report", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "history.json is damaged" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    (tmp_path / "history.json").write_text('{"epochs": []}')
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "report", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "evaluation.json is damaged (KeyError" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "report", str(empty)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "is not a finished run folder (no history.json)" in out.stderr


def test_prediction_grid_titles_do_not_overlap():
    """fmnist predict --grid with long file names and mistakes: no two titles overlap, and
    none runs into an image (its lines fit the room above its image)."""
    import numpy as np

    from fmnist_core.apps.plots import predictions_figure
    from fmnist_core.testing import synthetic_dataset

    images = synthetic_dataset().test.images[:16]
    predicted = [i % 10 for i in range(16)]
    truth = [(i + (i % 3 == 0)) % 10 for i in range(16)]
    names = [f"a-rather-long-file-name-{i}.png" for i in range(16)]
    figure = predictions_figure(images, predicted, truth, names)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    boxes = [t.get_window_extent(renderer) for t in axes.texts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    # each title sits in the blank band above its image: the pixels under it are white
    canvas = axes.images[0].get_array()
    to_data = axes.transData.inverted()
    for box in boxes:
        (x0, y0), (x1, y1) = to_data.transform([[box.x0, box.y0], [box.x1, box.y1]])
        rows = slice(int(max(0, min(y0, y1))), int(np.ceil(max(y0, y1))))
        cols = slice(int(max(0, min(x0, x1))), int(np.ceil(max(x0, x1))))
        assert (np.asarray(canvas)[rows, cols] == 255).all()
