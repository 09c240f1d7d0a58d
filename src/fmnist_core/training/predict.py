"""Predicting image files, folders of images or arrays with any function that gives logits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..labels import LABELS
from .metrics import softmax

OUTPUTS = ("labels", "indices", "probabilities", "predictions")


class Results(list):
    """The results of ``predict``, a plain list in the order of the inputs, that also knows
    which image each one is: ``paths`` (a file's path, ``<array i>`` for an array's rows) and
    ``by_path()``, so a folder's results can be tied to its files."""

    def __init__(self, results: Iterable, paths: Iterable[str]):
        super().__init__(results)
        self.paths = list(paths)

    def by_path(self) -> dict[str, object]:
        """``{path: result}``, in the order of the inputs."""
        return dict(zip(self.paths, self, strict=True))


@dataclass(frozen=True)
class Prediction:
    """One image's prediction."""

    path: str
    index: int
    label: str
    probabilities: tuple[float, ...]
    error: str | None = None  # set, with index -1, for an unreadable image (on_error="skip")


def predict(
    logits_of: Callable[[np.ndarray], np.ndarray],
    inputs: Iterable[str | os.PathLike] | str | os.PathLike | np.ndarray,
    output: str = "labels",
    on_error: str = "raise",
    max_pixels: int | None = None,
) -> list:
    """``Trainer.predict``: the results in the order of ``inputs`` (folders expanded)."""
    from ..data.images import collect_image_paths, read_images

    if output not in OUTPUTS:
        raise ConfigError(f"output must be {', '.join(OUTPUTS)}, got {output!r}")
    bad: list[Any] = []
    if isinstance(inputs, np.ndarray):
        from ..data.arrays import as_images

        # one 28×28 image, (n, 28, 28) or (n, 784): checked as fit's arrays are
        images = as_images(inputs, "images")
        paths = [f"<array {i}>" for i in range(len(images))]
        order = paths
    else:
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]
        listed = collect_image_paths(inputs)
        order = [str(p) for p in listed]
        found, images, bad = read_images(listed, max_pixels=max_pixels, on_error=on_error)
        paths = [str(p) for p in found]
    results = (
        dict(zip(paths, _results(logits_of(images), paths, output), strict=True))
        if len(images)
        else {}
    )
    for item in bad:
        results[str(item.path)] = (
            Prediction(str(item.path), -1, "", (), item.error) if output == "predictions" else None
        )
    return Results((results[path] for path in order), order)


def _results(logits: np.ndarray, paths: list[str], output: str) -> list:
    indices = logits.argmax(axis=1)
    if output == "indices":
        return [int(i) for i in indices]
    if output == "labels":
        return [LABELS[i] for i in indices]
    probs = softmax(logits)
    if output == "probabilities":
        return [[float(p) for p in row] for row in probs]
    return [
        Prediction(path, int(i), LABELS[i], tuple(float(p) for p in row))
        for path, i, row in zip(paths, indices, probs, strict=True)
    ]
