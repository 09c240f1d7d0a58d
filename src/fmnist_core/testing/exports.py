"""The export check every plugin that ships an export target runs against itself: a model trained
briefly on the real data is exported, gated on the whole test set, then run by the target's
*plain* runtime as a user would (``torch.export.load``, onnxruntime's ``InferenceSession``, the
LiteRT interpreter: the plugin's test passes that loader), and compared with fmnist.

    from fmnist_core.testing.exports import check_export, trained_briefly

    def test_pt2(real_data, tmp_path):
        trainer = trained_briefly("cnn", "torch", real_data)
        check_export(trainer, "torch-export", tmp_path, plain_logits, plain_metadata)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..plugins import get_export_target
from ..training.export import ExportResult
from ..training.metrics import softmax
from ..training.trainer import Trainer

MODELS = ("mlp", "fast")
"""The models the export acceptance covers: the article's (Dense layers only) and the speedrun's
(every layer type of cnn's and more: a strided stem, BatchNorm, max-pooling, flip TTA). cnn was
the third (issue 35) and adds no layer type: ``nox -s bench-exports`` exports all three to every
target (issue 45: the test command within 25 minutes)."""
READ_BACK_BY_COMMANDS = "fast"
"""The model whose artifact ``check_export`` reads back with ``fmnist evaluate`` and ``fmnist
predict`` in a process of their own (it has every layer type of the others); the others' through
``open_model`` in the test's process, what both commands call: a runtime's start-up once per
target, not once per model."""


def trained_briefly(model: str, backend: str, data: Dataset, images: int = 3000) -> Trainer:
    """``model`` after one epoch on ``images`` training images (batch 64, no weight average):
    seconds, and far enough from its initialisation to make the gate meaningful."""
    trainer = Trainer(model=model, backend=backend, epochs=1, batch_size=64, ema=None,
                      validation=None, data=data, verbose=0)  # fmt: skip
    trainer.fit(data.train.images[:images], data.train.labels[:images])
    return trainer


def check_export(
    trainer: Trainer,
    format: str,
    folder: Path,
    plain_logits: Callable[[Path, np.ndarray], np.ndarray],
    plain_metadata: Callable[[Path], dict[str, str]],
) -> ExportResult:
    """Export ``trainer`` as ``format`` into ``folder``; assert it passed its gate, that the
    plain runtime's answers on 1,000 test images agree with fmnist's (float: the same top-1 and
    probabilities within 1e-4; quantised: the same top-1 on ≥ 97%), and that the gate's scores
    are in the artifact's metadata as the plain runtime's tools read it; then ``read_back``."""
    target = get_export_target(format)
    path = target.default_path(Path(folder), trainer.model.name)
    result = trainer.export(path, format=format)
    gate = result.gate
    assert gate.passed and gate.images == 10_000, gate.summary()
    images = trainer.run_data.split("test").images[:1000]
    expected = softmax(trainer.logits(images, tta=False))
    got = softmax(np.asarray(plain_logits(result.path, images), np.float32))
    agreement = (got.argmax(1) == expected.argmax(1)).mean()
    if target.quantized:
        assert agreement >= 0.97, agreement
    else:
        assert agreement == 1.0 and np.abs(got - expected).max() < 1e-4
    metadata = plain_metadata(result.path)
    recorded = json.loads(metadata["fmnist_gate"])
    assert recorded["passed"] is True and recorded["agreement"] == gate.agreement
    assert metadata["fmnist_model"] == trainer.model.name
    assert metadata["fmnist_export"] == format
    by_commands = trainer.model.name == READ_BACK_BY_COMMANDS
    read_back(trainer, result, Path(folder), in_process=not by_commands)
    return result


_COMMANDS = """
import contextlib, io, json, sys
from fmnist_core.cli import main
outputs = []
for argv in json.loads(sys.argv[1]):
    printed, said = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(said):
        code = main(argv)
    outputs.append([code, printed.getvalue(), said.getvalue()])
print(json.dumps(outputs))
"""


def commands_in_one_process(
    *commands: list[str], quiet: bool = False
) -> list[tuple[int, str, str]]:
    """Each ``fmnist ARGS`` of ``commands`` run as ``fmnist`` runs it (``cli.main``), all in one
    process of their own, so that a runtime starts once for all and a crash in one fails the
    test instead of the test run: each one's (exit code, standard output, standard error). An
    exception escaping ``main`` (a traceback) fails the check; ``quiet``: so does anything else
    written to the process's standard error (a framework's own log lines)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _COMMANDS, json.dumps(commands)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, (commands, done.stderr[-2000:])
    assert not (quiet and done.stderr.strip()), done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return [(code, out, err) for code, out, err in results]


def _cli(*commands: list[str]) -> list[str]:
    """Each ``fmnist ARGS`` of ``commands``, as a user runs them, in one process of their own
    (one start-up of the runtime for all); their standard outputs."""
    results = commands_in_one_process(*commands)
    for command, (code, _, said) in zip(commands, results, strict=True):
        assert code == 0, (command, said[-2000:])
    return [printed for _, printed, _ in results]


def read_back(trainer: Trainer, result: ExportResult, folder: Path, count: int = 200,
              in_process: bool = False) -> None:  # fmt: skip
    """fmnist reads what it wrote: ``fmnist evaluate`` of the artifact (its own runtime) gives
    the test accuracy its gate recorded, and ``fmnist predict`` of ``count`` test images saved as
    PNG files gives the source model's labels (float targets; int8: on ≥ 97%). ``in_process``:
    through ``open_model``, what both commands call (targets a test registers in its process)."""
    from PIL import Image

    from ..apps.exported import open_model, recorded_gate

    images = folder / "images"
    images.mkdir(exist_ok=True)
    for number, image in enumerate(trainer.run_data.split("test").images[:count]):
        Image.fromarray(image).save(images / f"{number:04d}.png")
    if in_process:
        model = open_model(result.path)
        evaluated = {"accuracy": model.evaluate("test", tta=False).accuracy,
                     "gate": recorded_gate(model)}  # fmt: skip
        theirs = model.predict(images, output="indices", tta=False)
    else:
        evaluation, rows = _cli(
            ["evaluate", str(result.path), "--no-tta", "--json"],
            ["predict", "--weights", str(result.path), str(images), "--json", "--no-tta"],
        )
        evaluated = json.loads(evaluation)
        theirs = [row["index"] for row in json.loads(rows)]
    assert abs(evaluated["accuracy"] - result.gate.export_accuracy) < 1e-9, (
        evaluated["accuracy"],
        result.gate.export_accuracy,
    )
    assert evaluated["gate"]["export_accuracy"] == result.gate.export_accuracy
    mine = trainer.predict(images, output="indices", tta=False)
    same = np.mean([a == b for a, b in zip(theirs, mine, strict=True)])
    assert same >= (0.97 if result.gate.quantized else 1.0), same
