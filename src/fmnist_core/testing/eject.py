"""Checks of ``fmnist eject``'s programs: fmnist's own per-step losses for a recipe, and an
ejected program run as a plain script in a process where no fmnist module can be imported.

    losses = fmnist_losses("cnn", "torch", steps=20)
    theirs = run_ejected(folder / "torch" / "cnn.py", data, steps=20)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..data import Split
from ..spec.model import ModelSpec
from ..training.callbacks import Callback
from ..training.trainer import Trainer

# a meta-path finder that refuses fmnist's packages: the program must not need them
NO_FMNIST = (
    "import sys, runpy\n"
    "class Refuse:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0].startswith('fmnist'):\n"
    "            raise ImportError(f'{name} is not available to an ejected program')\n"
    "sys.meta_path.insert(0, Refuse())\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


class _Enough(Exception):
    pass


class _Losses(Callback):
    def __init__(self, steps: int):
        self.steps = steps
        self.losses: list[float] = []

    def on_progress(self, trainer, record, batches):
        self.losses.append(record.batch_loss)
        if len(self.losses) >= self.steps:
            raise _Enough


def fmnist_losses(model, backend: str, steps: int = 20, data=None, **settings) -> list[float]:
    """The losses of fmnist's first ``steps`` steps of ``model``'s recipe on ``backend``."""
    collect = _Losses(steps)
    trainer = Trainer(backend=backend, model=model, data=data, verbose=0, log_every=1,
                      callbacks=[collect], **settings)  # fmt: skip
    try:
        trainer.fit()
    except _Enough:
        pass
    return collect.losses


def run_ejected(program: Path, data: Path, steps: int = 20, timeout: float = 900,
                env: dict | None = None) -> tuple[list[float], Path, str]:  # fmt: skip
    """Run an ejected program for ``steps`` steps with fmnist unimportable; (its losses, the
    folder of its saved weights, its output)."""
    out = Path(tempfile.mkdtemp(prefix="ejected-"))
    losses = out / "losses.json"
    arguments = ["--data", str(data), "--steps", str(steps), "--losses", str(losses)]
    command = [sys.executable, "-c", NO_FMNIST, str(program), *arguments,
               "--out", str(out / "outputs")]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=out,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise AssertionError(f"{program} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(losses.read_text()), out / "outputs", done.stdout


TOLERANCE = {
    "mlp": 1e-4,
    "cnn": 5e-4,
    "fast": 1e-3,
    "balanced": 1e-3,
    "accurate": 2e-3,
    "other-layers": 2e-3,
}
"""Relative tolerance on the losses of steps 2-5, ejected program against fmnist on the same
framework (docs/weights-and-parity.md): the per-layer 1e-4 (torch's channels-last 5e-4 for
Conv2D) for mlp and cnn; 10× that for the speedrun's BatchNorm networks, as the conformance
suite's recipe check allows, since fmnist's own torch and TensorFlow backends are 2e-5 (fast)
and 1.5e-4 (accurate) apart at the second step already."""
FIRST_STEP = 1e-5
"""The first step's loss: the initial weights on the first batch, augmentation included, before
any update; one computation in both, so any difference is the program's, not rounding's."""
GROWTH_FROM = 5
"""After this step the bound grows in proportion to the step (×2 at step 10, ×4 at step 20):
rounding differences of BatchNorm and Adam grow with the steps, and by how much depends on the
CPU's kernels (2.3e-3 at step 15 for accurate on an Intel Xeon with AMX, 1.5e-3 on an AMD
EPYC), while a program that computes something else is off by far more from step 1 or 2."""
CHECKED = ("mlp", "fast")
"""The recipes each framework's eject test runs: mlp (the article's) and fast (Conv2D with
TensorFlow's uneven padding, BatchNorm, max-pooling, Adam with onecycle, flips, label smoothing,
the weight average, flip TTA: everything cnn and balanced use); ``other_layers()`` adds what
accurate uses besides (residual blocks, translation) and the layer types no recipe uses.
``bench/eject.py`` runs all five recipes."""


def other_layers() -> ModelSpec:
    """One network of the built-in layer types the ``CHECKED`` recipes leave out (GELU,
    AvgPool2D, Dropout, GlobalAvgPool, Residual, with a projection) and a recipe of the settings
    they leave out (translation, erasing), so that one more program per framework covers them
    all; ``unchecked_layer_types()`` names any built-in layer type neither uses (a core test
    keeps it empty)."""
    from ..spec.layers import (
        GELU,
        AvgPool2D,
        BatchNorm,
        Conv2D,
        Dense,
        Dropout,
        GlobalAvgPool,
        ReLU,
        Residual,
    )
    from ..spec.model import Recipe

    block = Residual([Conv2D(8, 3), BatchNorm(), ReLU(), Conv2D(8, 3), BatchNorm()])
    recipe = Recipe(
        epochs=1,
        batch_size=128,
        learning_rate=0.003,
        optimizer="adam",
        augment="translate:2,erase:0.5",
    )  # the article's constant rate, not onecycle's warm-up: the 20 steps move the weights
    return ModelSpec("other-layers", [
        Conv2D(6, 3, stride=2), GELU(), AvgPool2D(2), Dropout(0.0), block, ReLU(),
        GlobalAvgPool(), Dense(10),
    ], recipe=recipe)  # fmt: skip


def unchecked_layer_types() -> set[str]:
    """Built-in layer types that no eject test's network uses."""
    from ..plugins import get_model
    from ..spec.layers import BUILTIN_LAYERS

    used = {layer.kind for name in CHECKED for layer in get_model(name).walk()}
    return set(BUILTIN_LAYERS) - used - {layer.kind for layer in other_layers().walk()}


def bound(model: str, step: int) -> float:
    """The largest relative loss difference allowed at 1-based ``step`` (see ``TOLERANCE``)."""
    if step == 1:
        return FIRST_STEP
    return TOLERANCE.get(model, TOLERANCE["mlp"]) * max(1.0, step / GROWTH_FROM)


def with_fewer_test_images(data: Path, test: Split, count: int, folder: Path) -> Path:
    """A data folder in ``folder`` holding ``data``'s training files (linked) and the first
    ``count`` images and labels of ``test`` (its test split, already loaded) as raw IDX files:
    where a check reads the whole training set but needs only part of the test set."""
    from ..data.spec import FILES

    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if name.startswith("train"):
            source = next(p for p in (data / name, data / f"{name}.gz") if p.exists())
            (folder / source.name).symlink_to(source.resolve())
    for name, array in (("t10k-images-idx3-ubyte", test.images[:count]),
                        ("t10k-labels-idx1-ubyte", test.labels[:count])):  # fmt: skip
        header = bytes([0, 0, 8, array.ndim]) + b"".join(
            int(size).to_bytes(4, "big") for size in array.shape
        )
        (folder / name).write_bytes(header + array.tobytes())
    return folder


def check_ejected(model: str | ModelSpec, framework: str, data: Path, folder: Path,
                  steps: int = 20, test_images: int | None = 1000) -> dict:  # fmt: skip
    """Eject ``model`` (a recipe's name, or a spec using a plugin's layer types: mlp's
    tolerance, and no read-back of the program's weights, whose file records no architecture) to
    ``framework``; run the program for ``steps`` steps without fmnist;
    assert its losses are fmnist's within ``bound`` at each step and that fmnist, loading the
    weights it saved, reports the test loss the program printed (over the first
    ``test_images`` test images: the check is the same arithmetic on the same images, and a
    tenth of the test set is a tenth of the time; None: all). Returns the figures."""
    import re

    import numpy as np

    from ..apps.eject import eject
    from ..data import Dataset, load_dataset
    from ..engine.ejection import ejection_table

    dataset = load_dataset(data)
    if test_images:
        data = with_fewer_test_images(data, dataset.test, test_images, folder / "data")
        test = Split(dataset.test.images[:test_images], dataset.test.labels[:test_images])
        dataset = Dataset(dataset.train, test, source=str(data))
    trainer = Trainer(backend="numpy", model=model, data=dataset, verbose=0)
    (program,) = eject(trainer, [framework], folder / "ejected")
    theirs, outputs, printed = run_ejected(program, data, steps)
    mine = fmnist_losses(model, framework, steps, data=dataset, steps_per_execution=5)
    gap = np.abs(np.subtract(theirs, mine)) / np.abs(mine)
    name = model if isinstance(model, str) else model.name
    bounds = np.array([bound(name, step) for step in range(1, steps + 1)])
    assert len(theirs) == steps and (gap <= bounds).all(), (model, framework, gap, bounds)
    assert "Predicting:" not in printed  # no image given: no heading with nothing under it
    found = re.search(r"test loss: *([0-9.]+)", printed)
    assert found is not None, printed[-2000:]
    shown = float(found.group(1))
    figures = {
        "largest relative gap": float(gap.max()),
        "first step": float(gap[0]),
        "largest share of the bound": float((gap / bounds).max()),
        "test loss": shown,
    }
    if not isinstance(model, str):  # a framework's own weight file records no architecture
        return figures  # (fmnist reads those of registered recipes only)
    saved = outputs / str(ejection_table(framework).weights)
    loaded = Trainer.load(saved, data=dataset, verbose=0)
    assert loaded.model.layers == trainer.model.layers
    result = loaded.evaluate()
    assert abs(result.loss - shown) < 2e-6 * max(1.0, shown), (result.loss, shown)
    return figures
