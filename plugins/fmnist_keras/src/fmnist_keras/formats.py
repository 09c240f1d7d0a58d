"""``.keras`` archives (loaded with ``safe_mode=True``) and ``.weights.h5`` files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from fmnist_core import Weights, WeightsError

from .engine import build_model, import_keras, neutral, weight_list

SHAPES = [(784, 20), (20,), (20, 10), (10,)]


def _check(weights: list[np.ndarray], path: Path) -> dict[str, np.ndarray]:
    shapes = [tuple(w.shape) for w in weights]
    if shapes != SHAPES:
        raise WeightsError(f"{path} holds weights of shapes {shapes}, not the MLP's {SHAPES}",
                           fix="pass a model of the article's 784-20-10 network")
    return neutral(weights)


@contextlib.contextmanager
def _staged(path: Path, suffix: str):
    """A temporary file name with the suffix Keras insists on, renamed onto ``path`` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # Keras wants to create it
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_keras(path: Path) -> Weights:
    keras = import_keras()
    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors...
        raise WeightsError(f"{path} is not a loadable .keras model ({str(exc).splitlines()[0][:200]})",
                           fix="pass a file saved with model.save('name.keras') or by fmnist") from exc
    return Weights("mlp", _check(model.get_weights(), path), {"backend": "keras"})


def write_keras(path: Path, weights: Weights) -> None:
    import_keras()
    model = build_model()
    model.set_weights(weight_list(weights.params))
    with _staged(path, ".keras") as tmp:
        model.save(tmp)


def read_weights_h5(path: Path) -> Weights:
    import_keras()
    model = build_model()
    try:
        model.load_weights(str(path))
    except Exception as exc:
        raise WeightsError(f"{path} is not a .weights.h5 file of the MLP ({str(exc).splitlines()[0][:200]})",
                           fix="pass a file saved with model.save_weights('name.weights.h5') of the same model") from exc
    return Weights("mlp", _check(model.get_weights(), path), {"backend": "keras"})


def write_weights_h5(path: Path, weights: Weights) -> None:
    import_keras()
    model = build_model()
    model.set_weights(weight_list(weights.params))
    with _staged(path, ".weights.h5") as tmp:
        model.save_weights(tmp)
