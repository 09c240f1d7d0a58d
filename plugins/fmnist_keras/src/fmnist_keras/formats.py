"""``.keras`` archives (loaded with ``safe_mode=True``) and ``.weights.h5`` files of any model.

A ``.keras`` file's model is recognised among the registered models by its layers' names (an
fmnist-built model's) or else by the shapes of its weights, in order (a plain Sequential's); a
``.weights.h5`` holds no architecture: it is read into each registered model's Keras build until
one fits.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from fmnist_core import Weights, WeightsError
from fmnist_core.plugin_api import architecture_of, models

from .engine import get_weights, import_keras, param_groups, set_weights
from .lowering import build_model


def _check(model, path: Path) -> Weights:
    names = {layer.name for layer in model.layers}
    for name, spec in models().items():
        if set(param_groups(spec)) <= names:
            try:
                params = spec.check_params(get_weights(model, spec))
            except (ValueError, WeightsError):
                continue
            return Weights(name, params, {"backend": "keras"})
    weights = model.get_weights()
    shapes = [tuple(w.shape) for w in weights]
    for name, spec in models().items():
        if shapes == [p.shape for p in spec.params]:
            return Weights(
                name,
                {
                    p.name: np.array(w, np.float32)
                    for p, w in zip(spec.params, weights, strict=True)
                },
                {"backend": "keras"},
            )
    raise WeightsError(
        f"{path} holds weights of shapes {shapes[:6]}, which fit no known model "
        f"(the article's MLP: {[p.shape for p in models()['mlp'].params]})",
        fix="pass a model of a registered architecture (`fmnist models`)",
    )


def _model(weights: Weights):
    spec = architecture_of(weights)
    model = build_model(spec)
    set_weights(model, spec, spec.check_params(weights.params))
    return model


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
        raise WeightsError(
            f"{path} is not a loadable .keras model ({str(exc).splitlines()[0][:200]})",
            fix="pass a file saved with model.save('name.keras') or by fmnist",
        ) from exc
    return _check(model, path)


def write_keras(path: Path, weights: Weights) -> None:
    import_keras()
    model = _model(weights)
    with _staged(path, ".keras") as tmp:
        model.save(tmp)


def read_weights_h5(path: Path) -> Weights:
    import_keras()
    reasons = []
    for spec in models().values():
        model = build_model(spec)
        try:
            with warnings.catch_warnings():  # a candidate that does not fit warns before it fails
                warnings.simplefilter("ignore", UserWarning)
                model.load_weights(str(path))
        except Exception as exc:
            reasons.append(f"{spec.name}: {str(exc).splitlines()[0][:120]}")
            continue
        return _check(model, path)
    raise WeightsError(
        f"{path} is not a .weights.h5 file of a known model ({'; '.join(reasons)[:300]})",
        fix="pass a file saved with model.save_weights('name.weights.h5') of a registered model",
    )


def write_weights_h5(path: Path, weights: Weights) -> None:
    import_keras()
    model = _model(weights)
    with _staged(path, ".weights.h5") as tmp:
        model.save_weights(tmp)
