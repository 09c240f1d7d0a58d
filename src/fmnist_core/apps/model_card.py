"""The model card of a run folder (``README.md``, written by ``fmnist train``): what the model is,
how it was trained, how good it is per class, and how to load it in fmnist and in each
framework's plain API."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from ..labels import LABELS
from ..training.metrics import EvalResult, History
from ..training.run_folder import RunFolder


def code(text: object) -> str:
    """``text`` as an inline code span that nothing in it can close or break (names are the
    user's: a backtick, a pipe, a newline or HTML stay literal), safe in a table cell."""
    value = " ".join(str(text).split()).replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def prose(text: object) -> str:
    """``text`` as plain Markdown text inside a line: HTML escaped, and only the characters that
    could make markup there escaped (code, emphasis, links, table cells, strikethrough), so that
    a plain-text viewer shows ``784-20-10`` and ``Dense(20)`` as they are."""
    value = html.escape(" ".join(str(text).split()), quote=False)
    value = re.sub(r"([\\`*_\[\]|~])", r"\\\1", value)
    return value.replace("](", "]\\(")  # no link target, even where a viewer ignores the \\]


def fence(content: str, language: str = "") -> list[str]:
    """A fenced block of ``content`` whose fence no line of it can close."""
    ticks = "`" * max(3, max((len(r) for r in re.findall(r"`+", content)), default=0) + 1)
    return [ticks + language, content, ticks]


def model_card(run: Path, trainer, result: EvalResult, history: History, fit_seconds: float) -> str:
    """The card's Markdown for ``trainer`` trained into ``run``."""
    from ..training.checkpoints import package_version

    spec, config = trainer.model, trainer.recorded()
    train, validation = trainer.splits()
    data = (
        f"your arrays ({len(train):,} training images, digest {trainer.run_data.arrays_digest})"
        if trainer.run_data.arrays_digest
        else f"Fashion-MNIST ({trainer.data.source}): {len(train):,} training "
        f"images{f', {len(validation):,} held out for validation' if validation else ''}, "
        f"{result.count:,} test images"
    )
    recipe = [
        f"{trainer.optimizer.kind} {_settings(trainer.optimizer)}".strip(),
        f"learning rate {trainer.learning_rate:g} ({trainer.schedule.kind} schedule)",
        f"batch {trainer.batch_size}",
        f"{len(history)} epochs",
    ]
    if trainer.augment.active:
        recipe.append(f"augmentation {trainer.augment}")
    if trainer.label_smoothing:
        recipe.append(f"label smoothing {trainer.label_smoothing:g}")
    if trainer.ema:
        recipe.append(f"evaluated weights: an average (EMA {trainer.ema:g})")
    if trainer.tta:
        recipe.append("flip test-time augmentation")
    versions = {"fmnist-core": package_version("fmnist-core"), **trainer.backend.versions()}
    rows = [
        (
            "model",
            f"{code(spec.name)}: {prose(spec.description or 'a user architecture')}; "
            f"{spec.count_params():,} parameters",
        ),
        ("recipe", ", ".join(recipe)),
        ("data", data),
        ("seed", str(trainer.seed)),
        (
            "backend",
            f"{trainer.backend.name} on {config.get('device', 'cpu')}"
            + (f", options {config['options']}" if config.get("options") else ""),
        ),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        (
            "fit time",
            f"{fit_seconds:.1f} s ({', '.join(f'{s:.1f}' for s in history.column('seconds'))} s "
            "per epoch)",
        ),
        ("test accuracy", f"**{result.accuracy:.4f}** (mean loss {result.loss:.4f})"),
    ]
    per_class = result.per_class_accuracy
    lines = [
        f"# {code(spec.name)} on Fashion-MNIST, trained with {trainer.backend.name}",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        "## Accuracy per class (test set)",
        "",
        "| class | accuracy |",
        "| --- | ---: |",
        *(f"| {name} | {per_class[name]:.4f} |" for name in LABELS),
        "",
    ]
    if RunFolder(run).picture("confusion").exists():
        lines += ["![confusion matrix of the test set](confusion.png)", ""]
    if RunFolder(run).picture("curves").exists():
        lines += ["![training curves](curves.png)", ""]
    lines += ["## Layers", "", *fence(spec.summary()), "", *_settings_table(trainer)]
    lines += [*_loading(run), ""]
    return "\n".join(lines)


def _settings_table(trainer) -> list[str]:
    """Every recorded setting of the run (``TrainConfig``'s fields), with its value."""
    from ..training.config import settings

    recorded = trainer.config.to_dict()
    rows = [
        f"| `{s.name}` | {code(recorded[s.name])} | {s.help} |" for s in settings() if s.recorded
    ]
    return ["## Settings", "", "| setting | value | meaning |", "| --- | --- | --- |", *rows, ""]


def _settings(optimizer) -> str:
    settings = {k: v for k, v in optimizer.to_dict().items() if k != "kind"}
    return "(" + ", ".join(f"{k} {v}" for k, v in settings.items()) + ")" if settings else ""


def _loading(run: Path) -> list[str]:
    # paths relative to the run folder: the card travels with it
    run, weights = Path("."), Path(RunFolder.WEIGHTS)

    def shell(*words: object) -> str:
        import shlex

        return code(" ".join(shlex.quote(str(w)) for w in words))

    return [
        "## Load it",
        "",
        "From this folder (the paths are relative to it). In fmnist (any installed backend; "
        "`backend=` picks one):",
        "",
        *fence(
            f"from fmnist_core import Trainer\n\ntrainer = Trainer.load({str(run)!r})\n"
            'trainer.predict("shirt.png")',
            "python",
        ),
        "",
        f"{shell('fmnist', 'evaluate', run)}, {shell('fmnist', 'predict', '--weights', weights)} "
        f"IMAGES, {shell('fmnist', 'serve', weights)}.",
        "",
        "In a framework's plain API, after converting the neutral file:",
        "",
        "| framework | convert | load |",
        "| --- | --- | --- |",
        f"| PyTorch | {shell('fmnist', 'convert', weights, 'model.pth')} | "
        '`torch.load("model.pth", weights_only=True)`: a '
        "state_dict (the article's `NeuralNetwork` for the mlp) |",
        f"| TensorFlow | {shell('fmnist', 'convert', weights, 'model.savedmodel')} | "
        '`tf.saved_model.load("model.savedmodel").signatures["serving_default"]'
        "(images=uint8_images)` |",
        f"| Keras | {shell('fmnist', 'convert', weights, 'model.keras')} | "
        '`keras.saving.load_model("model.keras")` '
        "(float images in [0, 1]) |",
        f"| ONNX Runtime | {shell('fmnist', 'export', weights, 'model.onnx')} | "
        '`onnxruntime.InferenceSession("model.onnx").run(["class_index"], '
        '{"images": uint8_images})` |',
        f"| NumPy | none | {code(f'safetensors.numpy.load_file({str(weights)!r})')}: the neutral "
        "layout (docs/weights-and-parity.md) |",
    ]


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def write_model_card(run: str | os.PathLike, *args) -> Path:
    """Write the card into the run folder atomically; returns its path."""
    return RunFolder(run).write_card(model_card(Path(run), *args))


EXPORTS_BEGIN, EXPORTS_END = "<!-- fmnist export: begin -->", "<!-- fmnist export: end -->"
PICTURES_BEGIN, PICTURES_END = "<!-- fmnist report: begin -->", "<!-- fmnist report: end -->"
PICTURES = {
    "confusion": "confusion matrix of the test set",
    "curves": "training curves",
    "predictions": "test images with their predictions",
}


def _replace_section(text: str, begin: str, end: str, rows: list[str]) -> str:
    """``text`` with its section between the markers ``begin`` and ``end`` replaced by ``rows``
    (appended where it has none): fmnist rewrites only its own marked sections of a card."""
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        text = head.rstrip("\n") + "\n" + rest.partition(end)[2].lstrip("\n")
    if not rows:
        return text
    return text.rstrip("\n") + "\n\n" + "\n".join([begin, *rows, end, ""])


def link_pictures(run: str | os.PathLike) -> None:
    """After ``fmnist report`` draws a run's pictures: the card links every picture it does not
    show yet, in a marked "Pictures" section (the rest of the card is left as it is)."""
    folder = RunFolder(run)
    if not folder.card.exists():
        return
    with folder.lock():
        text = folder.card.read_text(encoding="utf-8")
        outside = text
        if PICTURES_BEGIN in text and PICTURES_END in text:
            head, _, rest = text.partition(PICTURES_BEGIN)
            outside = head + rest.partition(PICTURES_END)[2]
        missing = [
            f"![{alt}]({name}.png)"
            for name, alt in PICTURES.items()
            if folder.picture(name).exists() and f"]({name}.png)" not in outside
        ]
        rows = ["## Pictures", "", *(f"{link}\n" for link in missing)] if missing else []
        folder.write_card(_replace_section(text, PICTURES_BEGIN, PICTURES_END, rows))


def record_export(run: str | os.PathLike, result) -> None:
    """Add ``fmnist export``'s result to the run's ``exports.json`` (one record per written
    artifact, by its path relative to the run folder when inside it) and to its card's "Exports"
    section (that marked section rewritten; the rest of the card, the user's notes included, is
    left as it is)."""
    folder = RunFolder(run)
    with folder.lock():
        exports = folder.read_exports()
        exports[folder.relative(result.path)] = {
            "format": result.target,
            "bytes": result.size_bytes,
            "gate": json.loads(result.gate.to_json()),
        }
        folder.write_exports(exports)
        if not folder.card.exists():
            return
        text = folder.card.read_text(encoding="utf-8")
        rows = [
            "## Exports",
            "",
            "Each run by its own runtime on the test set beside this model (`fmnist export`); "
            "paths are relative to this folder.",
            "",
            "| format | file | bytes | same top-1 | largest probability difference | test accuracy "
            "| gate |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for path, record in sorted(exports.items()):
            scores = record["gate"]
            verdict = "passed" if scores.get("passed") else "failed"
            if not scores.get("enforced", True):
                verdict += " (kept with --no-gate)"
            rows.append(
                f"| {code(record['format'])} | {code(path)} | {record['bytes']:,} | "
                f"{_number(scores.get('agreement')):.2%} | "
                f"{_number(scores.get('max_probability_difference')):.2g} | "
                f"{_number(scores.get('export_accuracy')):.4f} | {verdict} |"
            )
        rows.append("")
        folder.write_card(_replace_section(text, EXPORTS_BEGIN, EXPORTS_END, rows))
