"""Cross-backend parity measurements used by the parity tests (``nox -s tests-parity -- -s``
prints them)."""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..plugins import backends, weight_formats
from ..training.trainer import Trainer

NATIVE_FORMAT = {"numpy": "safetensors", "torch": "pth", "tf": "tf-checkpoint", "keras": "keras"}


def installed_backends() -> list[str]:
    """Usable backends that train, the NumPy reference first."""
    names = [
        n
        for n, b in sorted(backends().items())
        if b.unavailable_reason() is None and n != "numpy" and b.trains
    ]
    return ["numpy", *names]


def first_step_losses(
    backend: str,
    data: Dataset,
    steps: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    model: str = "mlp",
    **options,
) -> np.ndarray:
    """Per-step losses of the first ``steps`` steps of epoch 1 of ``model``'s recipe, from the
    core's initial weights (``options``: the backend's)."""
    trainer = Trainer(
        backend=backend,
        data=data,
        seed=seed,
        batch_size=batch_size,
        verbose=0,
        model=model,
        **options,
    )
    return np.asarray(trainer.loop().run_steps(steps).losses, dtype=np.float64)


@dataclass
class Trained:
    backend: str
    trainer: Trainer
    accuracy: float
    logits: np.ndarray


def train_all(
    data: Dataset, names: list[str], seed: int = 0, epochs: int = 5
) -> dict[str, Trained]:
    out = {}
    for name in names:
        trainer = Trainer(backend=name, data=data, seed=seed, epochs=epochs, verbose=0)
        trainer.fit()
        out[name] = Trained(
            name, trainer, trainer.evaluate().accuracy, trainer.logits(data.test.images)
        )
    return out


@dataclass
class Transfer:
    source: str
    target: str
    format: str
    argmax_agreement: float
    max_logit_difference: float


def transfers(trained: dict[str, Trained], data: Dataset) -> list[Transfer]:
    """Move each backend's trained weights to every other backend, via its native format and
    the neutral one, and compare the logits on the whole test set."""
    formats = weight_formats()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for source, target in itertools.permutations(trained, 2):
            for fmt in dict.fromkeys([NATIVE_FORMAT.get(source, "safetensors"), "safetensors"]):
                if fmt not in formats:
                    continue
                path = Path(folder) / f"{source}-{fmt}{formats[fmt].suffixes[0]}"
                if not path.exists() and not Path(f"{path}.index").exists():
                    trained[source].trainer.save(path, format=fmt)
                moved = Trainer.load(path, backend=target, data=data, verbose=0)
                logits = moved.logits(data.test.images)
                reference = trained[source].logits
                results.append(
                    Transfer(
                        source,
                        target,
                        fmt,
                        float((logits.argmax(1) == reference.argmax(1)).mean()),
                        float(np.abs(logits - reference).max()),
                    )
                )
    return results
