"""Users' own arrays as training or evaluation data (``Trainer.fit(x, y)``, the scikit-learn
estimator): checked, and held in the dataset's form (uint8 ``(n, 28, 28)``, uint8 labels).

Images may be ``(n, 28, 28)`` or ``(n, 784)`` (one flattened image a row), uint8 in 0..255 or
floats in [0, 1] (rounded to 8 bits, which is what the dataset holds); labels any integers in
0..9. Anything else is a one-line ``ConfigError`` naming the problem.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..labels import NUM_CLASSES
from .dataset import Split
from .spec import IMAGE_SHAPE


def as_images(x: Any, what: str = "x") -> np.ndarray:
    """``x`` as uint8 images ``(n, 28, 28)``."""
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: not an array of images ({str(exc)[:80]})") from None
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if array.ndim == 2 and array.shape[1] == pixels:
        array = array.reshape(len(array), *IMAGE_SHAPE)
    elif array.ndim == 2 and array.shape == IMAGE_SHAPE:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE:
        raise ConfigError(
            f"{what}: images must have shape (n, 28, 28) or (n, 784), got {array.shape}",
            fix="reshape them, or convert image files with fmnist_core.load_images",
        )
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind not in "iuf":
        raise ConfigError(
            f"{what}: images must be uint8 or floating point, got {array.dtype}",
            fix="convert them with .astype('uint8') (0..255) or .astype('float32') ([0, 1])",
        )
    out = np.empty(array.shape, np.uint8)
    for start in range(0, len(array), CHUNK):  # a chunk at a time: memory stays near the output's
        out[start : start + CHUNK] = _pixels(array[start : start + CHUNK], what)
    return out


CHUNK = 4096
"""Images converted at once: a float32 memmap of any size costs its uint8 copy, not twice its
own size in temporaries."""


def _pixels(chunk: np.ndarray, what: str) -> np.ndarray:
    if chunk.dtype.kind in "iu":
        least, most = (int(chunk.min()), int(chunk.max())) if chunk.size else (0, 0)
        if least < 0 or most > 255:
            raise ConfigError(f"{what}: integer pixels must lie in 0..255, found {least}..{most}")
        return chunk.astype(np.uint8)
    if chunk.size and not np.isfinite(chunk).all():
        raise ConfigError(f"{what}: images hold NaN or infinite values", fix="clean them first")
    low, high = (float(chunk.min()), float(chunk.max())) if chunk.size else (0.0, 0.0)
    if low < 0 or high > 1:
        raise ConfigError(
            f"{what}: floating-point pixels must lie in [0, 1], found {low:g}..{high:g}",
            fix="divide 0..255 pixels by 255, or pass them as uint8",
        )
    return np.rint(chunk * np.float32(255)).astype(np.uint8)


def as_labels(y: Any, count: int, what: str = "y") -> np.ndarray:
    """``y`` as uint8 labels (``count`` of them), each in 0..9."""
    try:
        array = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: not an array of labels ({str(exc)[:80]})") from None
    if array.ndim != 1 or len(array) != count:
        raise ConfigError(f"{what}: {count} images need {count} labels, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        if array.dtype.kind != "f":
            raise ConfigError(
                f"{what}: labels must be integers 0..9, got {array.dtype} values",
                fix="pass an integer array (names map to indices through fmnist_core.LABELS)",
            )
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise ConfigError(f"{what}: labels must be integers 0..9, found non-integer floats")
        array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ConfigError(
            f"{what}: labels must lie in 0..{NUM_CLASSES - 1}, found {array.min()}..{array.max()}"
        )
    return array.astype(np.uint8)


def as_split(x: Any, y: Any, what: str = "x, y") -> Split:
    """Checked images and labels as a ``Split``."""
    if x is None or y is None:
        raise ConfigError(f"{what}: pass both the images and their labels")
    images = as_images(x, what)
    if len(images) == 0:
        raise ConfigError(f"{what}: no images")
    return Split(images, as_labels(y, len(images), what))


def digest(split: Split) -> str:
    """A short SHA-256 of a split's images and labels (runs on arrays record it)."""
    sha = hashlib.sha256(np.ascontiguousarray(split.images).data)
    sha.update(np.ascontiguousarray(split.labels).data)
    return sha.hexdigest()[:16]
