"""Training-time augmentation, owned by the core: the same uint8 images for every backend.

``Augment(flip=True, translate=2, erase=0.5)`` draws, for every sample of an epoch, whether it
is flipped left-right, by how many pixels it is moved (zero padding, as a random crop of the
padded image) and whether a random rectangle of it is erased to black. The draws depend only on
(seed, epoch) and the sample's place in the epoch's order, so a resumed run and data-parallel
workers see exactly the images one uninterrupted process sees. The core applies it to each block
of batches on the host and hands the engine the augmented pixels; evaluation never augments.

As text (``--augment``, config files): ``"flip,translate:2,erase:0.5"``; ``"flip:alternate"``
flips each image in every other epoch instead of at random (airbench's alternating flips: from
a random half in the first epoch, each image is seen unflipped and flipped in turn).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

ERASE_AREA = (0.02, 0.25)  # share of the image a random erasing covers (Zhong et al., 2017)
ERASE_RATIO = (0.3, 3.3)  # its height / width


@dataclass(frozen=True)
class Augment:
    """Which augmentations a recipe trains with (all off by default)."""

    flip: bool = False  # left-right, with probability 1/2
    translate: int = 0  # up to this many pixels in x and in y
    erase: float = 0.0  # the probability of erasing a random rectangle
    alternate: bool = False  # with flip: each image flipped in every other epoch, not at random

    def __post_init__(self):
        if not isinstance(self.flip, bool):
            raise ConfigError(f"augment flip must be True or False, got {self.flip!r}")
        if not isinstance(self.alternate, bool) or (self.alternate and not self.flip):
            raise ConfigError(
                f"augment alternate must be True or False, and needs flip; got {self.alternate!r}",
                fix="use flip:alternate",
            )
        if (
            isinstance(self.translate, bool)
            or not isinstance(self.translate, int)
            or not 0 <= self.translate <= 8
        ):
            raise ConfigError(
                f"augment translate must be an integer in 0..8 pixels, got {self.translate!r}",
                fix="use e.g. translate:2",
            )
        if (
            isinstance(self.erase, bool)
            or not isinstance(self.erase, (int, float))
            or not 0 <= self.erase <= 1
        ):
            raise ConfigError(
                f"augment erase must be a probability in [0, 1], got {self.erase!r}",
                fix="use e.g. erase:0.5",
            )

    @property
    def active(self) -> bool:
        return self.flip or self.translate > 0 or self.erase > 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v != getattr(Augment, k)}

    def __str__(self) -> str:
        parts = (["flip:alternate"] if self.alternate else ["flip"]) if self.flip else []
        parts += [f"translate:{self.translate}"] if self.translate else []
        parts += [f"erase:{self.erase:g}"] if self.erase else []
        return ",".join(parts) or "none"

    def draws(
        self, seed: int, epoch: int, size: int, order: np.ndarray | None = None
    ) -> EpochDraws:
        """Every sample's draws for ``epoch``, by place in the epoch's order; ``order`` (the
        epoch's permutation of the ``size`` samples) is needed for alternating flips, which
        follow each sample, not each place."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0xA06]))
        flips = rng.random(size) < 0.5 if self.flip else np.zeros(size, bool)
        if self.alternate:  # the random draw above is still made: the others stay the same
            if order is None or len(order) != size:
                raise ValueError("alternating flips need the epoch's order of the samples")
            first = np.random.default_rng(np.random.SeedSequence([seed, 0xF11F])).random(size)
            flips = (first < 0.5)[order] ^ bool(epoch % 2)
        t = self.translate
        shifts = rng.integers(-t, t + 1, size=(size, 2)) if t else np.zeros((size, 2), np.int64)
        boxes = np.zeros((size, 4), np.int64)  # top, left, height, width; height 0: no erasing
        if self.erase:
            chosen = rng.random(size) < self.erase
            area = rng.uniform(*ERASE_AREA, size) * 28 * 28
            ratio = np.exp(rng.uniform(math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), size))
            height = np.clip(np.round(np.sqrt(area * ratio)), 1, 28).astype(np.int64)
            width = np.clip(np.round(np.sqrt(area / ratio)), 1, 28).astype(np.int64)
            top = (rng.random(size) * (29 - height)).astype(np.int64)
            left = (rng.random(size) * (29 - width)).astype(np.int64)
            boxes = np.stack([top, left, np.where(chosen, height, 0), width], axis=1)
        return EpochDraws(flips, shifts, boxes)


@dataclass(frozen=True)
class EpochDraws:
    """One epoch's per-sample draws (by place in the epoch's order)."""

    flips: np.ndarray  # (N,) bool
    shifts: np.ndarray  # (N, 2) int: dy, dx
    boxes: np.ndarray  # (N, 4) int: top, left, height (0: none), width

    def apply(self, images: np.ndarray, start: int) -> np.ndarray:
        """The augmented copies of ``images`` (n, H, W) uint8, the samples at places
        ``start … start + n`` of the epoch's order."""
        n, h, w = images.shape
        places = slice(start, start + n)
        out = np.array(images)
        flips = self.flips[places]
        out[flips] = out[flips, :, ::-1]
        shifts = self.shifts[places]
        if shifts.any():
            pad = int(np.abs(shifts).max())
            padded = np.zeros((n, h + 2 * pad, w + 2 * pad), np.uint8)
            padded[:, pad : pad + h, pad : pad + w] = out
            for dy, dx in {tuple(s) for s in shifts.tolist()}:  # one slice per distinct shift
                rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
                out[rows] = padded[rows, pad - dy : pad - dy + h, pad - dx : pad - dx + w]
        boxes = self.boxes[places]
        erased = boxes[:, 2] > 0
        if erased.any():
            top, left, height, width = (boxes[erased, i, None, None] for i in range(4))
            y, x = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
            inside = (y >= top) & (y < top + height) & (x >= left) & (x < left + width)
            out[erased] = np.where(inside, np.uint8(0), out[erased])
        return out


def as_augment(value: Any) -> Augment:
    """An ``Augment`` from ``None``/``"none"``, a text like ``"flip,translate:2,erase:0.5"``, a
    dict (as run configs record it) or an ``Augment``."""
    if value is None or isinstance(value, Augment):
        return value or Augment()
    if isinstance(value, dict):
        try:
            return Augment(**value)
        except TypeError as exc:
            raise ConfigError(
                f"bad augment {value!r}: {exc}", fix="use flip, alternate, translate and erase"
            ) from None
    if not isinstance(value, str):
        raise ConfigError(
            f"augment must be a text like 'flip,translate:2' or an Augment, got {value!r}"
        )
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, argument = part.partition(":")
        if part == "none":
            continue
        if name == "flip" and argument in ("", "alternate"):
            values["flip"] = True
            values["alternate"] = argument == "alternate"
        elif name == "translate":
            values["translate"] = _number(part, argument or "2", int)
        elif name == "erase":
            values["erase"] = _number(part, argument or "0.5", float)
        else:
            raise ConfigError(
                f"unknown augmentation {part!r}",
                fix="use flip (or flip:alternate), translate:N and erase:P (e.g. "
                "'flip,translate:2,erase:0.5'), or none",
            )
    return Augment(**values)


def _number(part: str, text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"augmentation {part!r}: {text!r} is not a number", fix="e.g. translate:2 or erase:0.5"
        ) from None


def flipped(images: np.ndarray) -> np.ndarray:
    """Images flipped left-right (test-time augmentation)."""
    return np.ascontiguousarray(images[..., ::-1])
