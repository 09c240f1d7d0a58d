"""Pictures of a run: training curves, confusion matrix, prediction grids, run comparisons.

Needs matplotlib (``pip install fmnist-core[plots]``); drawn with the Agg backend, no display.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import FmnistError
from ..labels import LABELS
from ..training.metrics import History
from ..training.run_folder import RunFolder


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise FmnistError(
            "drawing pictures needs matplotlib, which is not installed",
            fix='`pip install "fmnist-core[plots]"`',
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a figure as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _progress_x(history: History) -> np.ndarray:
    """Each progress report's position in epochs (epoch 1 spans 0..1)."""
    per_epoch = max((r.batch for r in history.progress), default=1)
    return np.array([r.epoch + r.batch / per_epoch for r in history.progress])


def curves_figure(history: History, test: tuple[float, float] | None = None, title: str = ""):
    """Loss and accuracy every progress report and per epoch, with the test metrics."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    x = _progress_x(history)
    epochs = np.array([r.epoch + 1 for r in history.epochs])
    ax_loss.plot(
        x,
        [r.loss for r in history.progress],
        color="tab:blue",
        alpha=0.45,
        label="running mean within epoch",
    )
    ax_loss.plot(epochs, history.column("loss"), "o-", color="tab:blue", label="epoch mean")
    ax_acc.plot(
        x,
        [r.accuracy * 100 for r in history.progress],
        color="tab:green",
        alpha=0.45,
        label="running mean within epoch",
    )
    ax_acc.plot(
        epochs,
        [a * 100 for a in history.column("accuracy")],
        "o-",
        color="tab:green",
        label="epoch",
    )
    validated = [r for r in history.epochs if r.val_accuracy is not None]
    if validated:
        ax_loss.plot(
            [r.epoch + 1 for r in validated],
            [r.val_loss for r in validated],
            "d-.",
            color="tab:purple",
            label="validation",
        )
        ax_acc.plot(
            [r.epoch + 1 for r in validated],
            [100 * (r.val_accuracy or 0.0) for r in validated],
            "d-.",
            color="tab:purple",
            label="validation",
        )
    tested = [r for r in history.epochs if r.test_accuracy is not None]
    if tested:
        ax_loss.plot(
            [r.epoch + 1 for r in tested],
            [r.test_loss for r in tested],
            "s--",
            color="tab:red",
            label="test",
        )
        ax_acc.plot(
            [r.epoch + 1 for r in tested],
            [100 * (r.test_accuracy or 0.0) for r in tested],
            "s--",
            color="tab:red",
            label="test",
        )
    elif test is not None:
        ax_loss.plot(
            [epochs[-1]], [test[0]], "s", color="tab:red", markersize=8, label=f"test {test[0]:.3f}"
        )
        ax_acc.plot(
            [epochs[-1]],
            [test[1] * 100],
            "s",
            color="tab:red",
            markersize=8,
            label=f"test {test[1] * 100:.1f}%",
        )
    for ax, name in ((ax_loss, "training loss (mean per sample)"), (ax_acc, "accuracy (%)")):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def confusion_figure(confusion: np.ndarray, title: str = "Confusion matrix (test set)"):
    """A labelled heatmap of ``confusion[true, predicted]`` with the counts written in."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images")
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = confusion.max() / 2
    for (row, col), count in np.ndenumerate(confusion):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > threshold else "black",
        )
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f"{title}: accuracy {accuracy * 100:.2f}%")
    return fig


def predictions_figure(
    images: np.ndarray,
    predicted: list[int],
    truth: list[int] | None = None,
    names: list[str] | None = None,
    columns: int = 8,
):
    """A grid of images with their predicted labels; mistakes in red with the true label.

    Drawn as one montage image with text labels: one axes per image took a second for 48.
    """
    plt = _pyplot()
    count = len(images)
    rows = -(-count // columns)
    # room above each image for its lines of text (file name, label, true label), so that no
    # title runs into the image above it
    lines = 1 + (names is not None) + (truth is not None)
    label_space, gap = 9 * lines + 4, 4
    cell_h, cell_w = 28 + label_space, 28 + gap
    canvas = np.full((rows * cell_h, columns * cell_w), 255, dtype=np.uint8)
    fig, ax = plt.subplots(figsize=(columns * 1.3, rows * cell_h * 1.3 / cell_w))
    for index in range(count):
        row, col = divmod(index, columns)
        top, left = row * cell_h + label_space, col * cell_w + gap // 2
        canvas[top : top + 28, left : left + 28] = images[index]
        label = LABELS[predicted[index]]
        true = None if truth is None else truth[index]
        wrong = true is not None and true != predicted[index]
        text = f"{label}\n(true: {LABELS[true]})" if wrong and true is not None else label
        if names is not None:
            name = names[index]
            text = f"{name if len(name) <= 16 else name[:7] + '…' + name[-8:]}\n{text}"
        ax.text(
            left + 14,
            top - 1.5,
            text,
            ha="center",
            va="bottom",
            fontsize=7,
            color="tab:red" if wrong else "black",
        )
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if truth is not None:
        mistakes = sum(t != p for t, p in zip(truth, predicted, strict=True))
        ax.set_title(f"{count - mistakes}/{count} right; mistakes in red", fontsize=10)
    return fig


def comparison_figure(runs: dict[str, tuple[History, float | None]]):
    """Several runs: epoch losses overlaid, and test accuracies side by side."""
    plt = _pyplot()
    fig, (ax_loss, ax_bar) = plt.subplots(1, 2, figsize=(11, 4))
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-.")]
    for number, (name, (history, _)) in enumerate(runs.items()):
        marker, line = styles[number % len(styles)]
        # identical runs (parity) would hide each other: each gets its own marker and dash
        ax_loss.plot(
            [r.epoch + 1 for r in history.epochs],
            history.column("loss"),
            marker=marker,
            linestyle=line,
            markersize=max(3, 11 - 2 * number),
            label=name,
        )
    ax_loss.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("training loss per epoch")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    names = list(runs)
    accuracies = [(runs[n][1] or 0) * 100 for n in names]
    bars = ax_bar.bar(names, accuracies, color="tab:green")
    ax_bar.bar_label(bars, labels=[f"{a:.2f}%" for a in accuracies], fontsize=8)
    low = min(accuracies) if accuracies else 0
    ax_bar.set_ylim(max(0, low - 5), min(100, max(accuracies, default=100) + 2))
    ax_bar.set_title("test accuracy")
    ax_bar.tick_params(axis="x", rotation=30)
    return fig


def load_run(run: str | os.PathLike) -> tuple[History, dict, dict]:
    """A finished run folder's history, evaluation and config (the last two may be absent: a
    sweep's trials are never evaluated on the test set).

    A missing or damaged file is an ``FmnistError`` naming it.
    """
    import json

    from ..atomic import read_user_file

    run = Path(run)

    def read(name: str, convert, optional: bool = False):
        path = run / getattr(RunFolder, name.upper())
        if not path.is_file():
            if optional:
                return {}
            raise FmnistError(
                f"{run} is not a finished run folder (no {path.name})",
                fix="pass folders written by `fmnist train`",
            )
        try:
            return convert(json.loads(read_user_file(path, "the run record")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FmnistError(
                f"{path} is damaged ({type(exc).__name__}: {exc})",
                fix="run `fmnist train` again, or restore the file",
            ) from exc

    def evaluation(data: dict) -> dict:
        return {
            **data,
            "loss": float(data["loss"]),
            "accuracy": float(data["accuracy"]),
            "confusion": np.asarray(data["confusion"], dtype=np.int64),
        }

    return (
        read("history", History.from_dict),
        read("evaluation", evaluation, optional=True),
        read("config", dict, optional=True),
    )


def draw_run(run: str | os.PathLike, trainer=None, test_set: bool = True) -> list[Path]:
    """(Re)draw curves.png, confusion.png and predictions.png in a run folder (without
    ``test_set``, or with no evaluation.json, only the curves)."""
    run = Path(run)
    folder = RunFolder(run)
    history, evaluation, config = load_run(run)
    # what the run is, not where it lies: "mlp on torch, 5 epochs"
    model = config.get("model", "a model")
    model = model.get("name", "a model") if isinstance(model, dict) else model
    title = (
        f"{str(model)[:40]} on {str(config.get('backend', '?'))[:20]}, "
        f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    )
    if not evaluation or not test_set:
        return [save_figure(curves_figure(history, None, title), folder.picture("curves"))]
    written = [
        save_figure(
            curves_figure(history, (evaluation["loss"], evaluation["accuracy"]), title),
            folder.picture("curves"),
        ),
        save_figure(confusion_figure(evaluation["confusion"]), folder.picture("confusion")),
    ]
    if trainer is None and folder.weights.exists():
        from ..training.trainer import Trainer

        trainer = Trainer.load(folder.weights, verbose=0)
    if trainer is not None:
        test = trainer.data.test
        images = np.asarray(test.images[:48])
        predicted = trainer.predict(images, output="indices")
        written.append(
            save_figure(
                predictions_figure(images, predicted, [int(t) for t in test.labels[:48]]),
                folder.picture("predictions"),
            )
        )
    return written
