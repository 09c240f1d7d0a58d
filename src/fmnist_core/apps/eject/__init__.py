"""``fmnist eject``: a model and its recipe as the article's three plain programs (PyTorch,
low-level TensorFlow, Keras), each importing only its framework, NumPy and Pillow.

What the programs share is written here (``common``); each framework's own text (its imports,
its layers, its training functions) comes from its plugin's ejection table
(``fmnist_core.engine.ejection``), so a plugin's layer type that supplies its text is ejected too.

Each program is written into its own folder with what it needs beside it: its initial weights in
its framework's format (fmnist's seeded initialisation, or a run's weights), written by that
framework's fmnist plugin, and ``batches.npz``, the order and augmentation draws of every epoch
as fmnist makes them, so that the program's losses can be compared with fmnist's step by step.
``--to all`` also writes ``MODEL.html`` and ``MODEL.md``: the three aligned section by section.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic import atomic_write_bytes
from ...engine.batching import epoch_steps
from ...engine.ejection import (
    BUILT_IN_FRAMEWORKS,
    PROGRAM_SECTIONS,
    EjectionTable,
    ejectable_frameworks,
    ejection_table,
)
from ...errors import ConfigError
from ...io.formats import write_weights
from ...io.weights import Weights
from ...spec.model import ModelSpec
from . import common

FRAMEWORKS = BUILT_IN_FRAMEWORKS
"""The article's three frameworks, whose programs ``--to all`` writes side by side."""
SECTIONS = (
    ("header", "What it is"),
    ("imports", "Imports"),
    ("labels", "The labels"),
    ("settings", "The recipe"),
    ("get_data", "get_data"),
    ("learning_rate", "The learning-rate schedule"),
    ("batches", "fmnist's batches and augmentation"),
    ("average", "The average of the weights"),
    ("NeuralNetwork", "NeuralNetwork"),
    (
        "training",
        "fit_one_batch, fit, evaluate_one_batch, evaluate, training_phase, predict, "
        "inference_phase",
    ),  # fmt: skip
    ("main", "The command line"),
)


def plan(trainer) -> dict[str, Any]:
    """What every program of ``trainer``'s run needs: spec, settings, initial weights, draws."""
    from ...data import validation_indices
    from ...engine.batching import epoch_permutation

    spec, config = trainer.model, trainer.config
    if trainer.source_metadata:
        initial = trainer.params
    else:
        initial = spec.init_params(config.seed)
    train = trainer.data.train
    kept = (
        validation_indices(train.labels, config.validation)[0]
        if config.validation
        else np.arange(len(train))
    )
    steps = epoch_steps(len(kept), config.batch_size, config.steps_per_epoch)
    used = slice(0, steps * config.batch_size)  # steps_per_epoch: the first batches of the order
    draws: dict[str, list[np.ndarray]] = {"order": []}
    augment = trainer.augment
    for epoch in range(config.epochs):
        permutation = epoch_permutation(config.seed, epoch, len(kept))
        draws["order"].append(kept[permutation][used])
        if augment.active:
            made = augment.draws(config.seed, epoch, len(kept), permutation)
            if augment.flip:
                draws.setdefault("flips", []).append(made.flips[used])
            if augment.translate:
                draws.setdefault("shifts", []).append(made.shifts[used].astype(np.int8))
            if augment.erase:
                draws.setdefault("boxes", []).append(made.boxes[used].astype(np.uint8))
    arrays = {k: np.stack(v) for k, v in draws.items()}
    arrays["order"] = arrays["order"].astype(np.uint16)
    return {"spec": spec, "config": config, "initial": initial, "draws": arrays,
            "steps_per_epoch": steps}  # fmt: skip


def _recipe_line(spec: ModelSpec, config) -> str:
    parts = [
        f"{config.epochs} epochs",
        f"batch {config.batch_size}",
        f"{config.optimizer.kind} at {config.learning_rate:g} ({config.schedule.kind})",
    ]
    if config.augment is not None and config.augment.active:
        parts.append(f"augmentation {config.augment}")
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    if config.ema:
        parts.append(f"an average of the weights ({config.ema:g})")
    if config.tta:
        parts.append("flip TTA")
    return f"Recipe: {', '.join(parts)}."


def table_of(framework: str) -> EjectionTable:
    """``framework``'s ejection table (the union of every plugin's), with its program."""
    table = ejection_table(framework)
    if table.program_text is None:
        check_frameworks([framework])
    return table


def sections_of(framework: str, planned: dict) -> dict[str, str]:
    """The program for ``framework`` as its named sections, in order."""
    table = table_of(framework)
    spec, config = planned["spec"], planned["config"]
    run = (
        f"python {spec.name}.py --data /usr/share/datasets/fashion-mnist [--epochs N] "
        "[--steps N] [--losses losses.json] [--out outputs] [--predict image.png]"
    )
    augment = "flips" in planned["draws"] or "shifts" in planned["draws"]
    augment = augment or "boxes" in planned["draws"]
    own = table.program_text(spec, config, table.lines())  # type: ignore[misc]
    if set(own) != set(PROGRAM_SECTIONS):
        raise ConfigError(
            f"the {table.name} ejection table's program wrote sections {sorted(own)}, not "
            f"{list(PROGRAM_SECTIONS)}",
            fix="update the plugin that writes it",
        )
    return {
        "header": common.header(
            table.name,
            spec.name,
            _recipe_line(spec, config),
            run,
            f"outputs/{table.weights}",
            str(table.initial),
        ),
        "imports": own["imports"],
        "labels": common.LABELS_MAP,
        "settings": common.settings_block(config, spec, planned["steps_per_epoch"])
        + "HERE = Path(__file__).resolve().parent\n",
        "get_data": common.DATA,
        "learning_rate": common.schedule(config.schedule.kind, config.schedule.__dict__),
        "batches": common.BATCHES + "\n\n" + (common.AUGMENT if augment else common.NO_AUGMENT),
        "average": common.AVERAGE,
        "NeuralNetwork": own["NeuralNetwork"],
        "training": own["training"],
        "main": common.CLI,
    }


def program_text(sections: dict[str, str]) -> str:
    """The program as one file: sections two lines apart, imports it does not use left out."""
    text = "\n\n".join(s.strip("\n") + "\n" for s in sections.values())
    text = text.replace("\n\n\nlabels_map", "\n\nlabels_map")  # one line after the imports
    body = text.split("labels_map = {", 1)[1]
    for line, name in (("import math\n", "math"), ("from torch.nn import functional as F\n", "F")):
        if not re.search(rf"(?<![\w.]){name}\.", body):
            text = text.replace(line, "", 1)
    return text


MAX_DRAW_BYTES = 256 * 2**20
"""The most ``batches.npz`` may hold uncompressed (each epoch's order and draws): about 500
epochs of the training split (9 bytes an image). A recipe asking for more is refused before anything is made."""


def installed(framework: str) -> bool:
    """Whether an installed plugin writes ``framework``'s program and its initial weights."""
    from ...errors import WeightsError
    from ...io.formats import format_for

    if framework not in ejectable_frameworks():
        return False
    table = ejection_table(framework)
    try:
        return (
            format_for(str(table.initial), table.weights_format, for_writing=True).write is not None
        )
    except WeightsError:
        return False


def known_frameworks() -> list[str]:
    """The frameworks ``--to`` may name (``all``: every one): the article's three, installed or
    not (a missing one is refused naming its extra), then any a plugin adds."""
    return [*FRAMEWORKS, *(f for f in ejectable_frameworks() if f not in FRAMEWORKS)]


def check_frameworks(to: list[str]) -> None:
    """Refuse, before anything is written, a framework fmnist cannot write or whose plugin is
    missing (its program's text and initial weights are that framework's plugin's)."""
    known = known_frameworks()
    for framework in to:
        if framework not in known:
            raise ConfigError(
                f"fmnist eject --to {framework!r}: not a framework it writes",
                fix=f"pick {', '.join(known)} or all",
            )
    missing = [f for f in to if not installed(f)]
    if missing:
        names = " and ".join(BUILT_IN_FRAMEWORKS.get(f, f) for f in missing)
        extras = ",".join(missing)
        plural = "s" if len(missing) > 1 else ""
        raise ConfigError(
            f"fmnist eject --to {','.join(missing)}: the {names} program{plural} and "
            f"initial weights are written by fmnist's {names} plugin{plural}, not installed; "
            "nothing was written",
            fix=f"pip install 'fmnist-core[{extras}]', or leave out --to to write the programs "
            "of the frameworks installed",
        )


def _check_plan_size(trainer) -> None:
    config = trainer.config
    images = len(trainer.data.train)
    images = min(
        images, epoch_steps(images, config.batch_size, config.steps_per_epoch) * config.batch_size
    )
    per_epoch = images * (2 + 1 + 2 + 4)  # order, flips, shifts, boxes
    if config.epochs * per_epoch > MAX_DRAW_BYTES:
        raise ConfigError(
            f"fmnist eject: {config.epochs:,} epochs would need "
            f"{config.epochs * per_epoch / 2**30:.1f} GiB of batch draws (batches.npz holds "
            "every epoch's)",
            fix=f"eject a recipe of at most {MAX_DRAW_BYTES // per_epoch:,} epochs (--epochs "
            "of a run folder's config, or the model's recipe)",
        )


def eject(trainer, to: list[str], out: str | os.PathLike) -> list[Path]:
    """Write the programs for the frameworks ``to`` into ``out/{framework}/``; returns the
    programs' paths (and the side-by-side pages' for all three).

    ``out`` appears whole or not at all: everything is written into a staged folder beside it,
    then moved into place. An ``out`` that exists is replaced only if it is empty or an earlier
    ``fmnist eject`` output; anything else is refused before anything is written."""
    from ...atomic import check_replaceable, move_into_place, remove_staged, staged_folder

    out = Path(out)
    check_frameworks(to)
    for framework in to:
        ejection_table(framework).check(trainer.model.walk())
    check_replaceable(out, "eject")
    _check_plan_size(trainer)
    planned = plan(trainer)
    spec = planned["spec"]
    weights = Weights(spec.name, planned["initial"], {"architecture": json.dumps(spec.to_dict())})
    written, everything = [], {}
    staged = staged_folder(out, "eject")
    try:
        for framework in to:
            folder = staged / framework
            folder.mkdir()
            table = ejection_table(framework)
            title, format_, initial = table.name, table.weights_format, str(table.initial)
            sections = sections_of(framework, planned)
            everything[framework] = sections
            with open(folder / "batches.npz", "wb") as handle:
                np.savez_compressed(handle, **planned["draws"])
            try:
                write_weights(folder / initial, weights, format_)
            except Exception as exc:
                raise ConfigError(
                    f"the {title} program's initial weights could not be written by fmnist's "
                    f"{title} plugin ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})",
                    fix=f"pip install --upgrade 'fmnist-core[{framework}]'",
                ) from None
            program = folder / f"{spec.name}.py"
            atomic_write_bytes(program, program_text(sections).encode())
            written.append(out / framework / program.name)
        if set(FRAMEWORKS) <= set(everything):
            pages = side_by_side(spec, everything, staged)
            written += [out / page.name for page in pages]
        move_into_place(staged, out, "eject")
    finally:
        remove_staged(staged)
    return written


def pages(trainer, out: str | os.PathLike) -> list[Path]:
    """Only the side-by-side pages of ``trainer``'s model (docs/ejected/ holds mlp's and cnn's;
    ``nox -s tests-docs`` checks they are what this writes)."""
    planned = plan(trainer)
    check_frameworks(list(FRAMEWORKS))
    programs = {framework: sections_of(framework, planned) for framework in FRAMEWORKS}
    Path(out).mkdir(parents=True, exist_ok=True)
    return side_by_side(planned["spec"], programs, Path(out))


def side_by_side(spec: ModelSpec, programs: dict[str, dict[str, str]], out: Path) -> list[Path]:
    """The three programs aligned section by section, as the article shows them (HTML, and
    Markdown with one block per framework per section)."""
    order = list(FRAMEWORKS)
    rows, markdown = [], [f"# fmnist's {spec.name}, in PyTorch, TensorFlow and Keras", ""]
    for key, title in SECTIONS:
        cells = "".join(
            f"<td><pre><code>{html.escape(programs[f][key])}</code></pre></td>" for f in order
        )
        rows.append(
            f'<tr><th colspan="3" id="{key}">{html.escape(title)}</th></tr><tr>{cells}</tr>'
        )
        markdown += [f"## {title}", ""]
        for framework in order:
            markdown += [f"{FRAMEWORKS[framework]}", "", "```python", programs[framework][key]
                         .rstrip("\n"), "```", ""]  # fmt: skip
    heads = "".join(f"<th>{FRAMEWORKS[f]}</th>" for f in order)
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>fmnist {html.escape(spec.name)}: side by side</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1rem}table{border-collapse:collapse;"
        "table-layout:fixed;width:100%}td,th{border:1px solid #ccc;vertical-align:top;"
        "padding:.3rem}td{width:33%}pre{margin:0;font-size:12px;white-space:pre-wrap}"
        "th[colspan]{background:#eef;text-align:left}</style></head><body>"
        f"<h1>fmnist's {html.escape(spec.name)}, in PyTorch, TensorFlow and Keras</h1>"
        "<p>The three programs <code>fmnist eject --to all</code> wrote, aligned section by "
        "section. Each trains on the batches fmnist would train on and gives the same losses.</p>"
        f"<table><tr>{heads}</tr>{''.join(rows)}</table></body></html>\n"
    )
    html_path, markdown_path = out / f"{spec.name}.html", out / f"{spec.name}.md"
    atomic_write_bytes(html_path, page.encode())
    atomic_write_bytes(markdown_path, "\n".join(markdown).encode())
    return [html_path, markdown_path]
