"""The Fashion-MNIST label map, in the article's names and order."""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "T-Shirt",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle Boot",
)
"""Class names indexed by label: ``LABELS[9] == "Ankle Boot"``."""

NUM_CLASSES = len(LABELS)
