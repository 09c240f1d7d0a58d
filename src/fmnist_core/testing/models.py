"""What the conformance suites train: synthetic data, test-only models, every layer type's
examples, the optimizers they are checked with."""

from __future__ import annotations

import numpy as np

from ..data import IMAGE_SHAPE, Dataset, Split
from ..labels import NUM_CLASSES
from ..plugins import layer_types, models
from ..spec.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool2D, ReLU
from ..spec.model import ModelSpec
from ..spec.optimizers import Optimizer
from ..training.callbacks import Callback


def synthetic_dataset(train: int = 640, test: int = 160, seed: int = 0) -> Dataset:
    """Learnable fake Fashion-MNIST: each class is a noisy bright template on black."""
    rng = np.random.default_rng(seed)
    shape = (NUM_CLASSES, *IMAGE_SHAPE)
    templates = rng.integers(0, 256, size=shape) * (rng.random(shape) < 0.3)

    def split(n):
        labels = rng.integers(0, NUM_CLASSES, size=n).astype(np.uint8)
        noise = rng.integers(0, 60, size=(n, *IMAGE_SHAPE))
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return Split(images, labels)

    return Dataset(split(train), split(test), source="synthetic")


class _StopAfter(Callback):
    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, trainer, record):
        trainer.stop_training = record.epoch + 1 >= self.epochs


#: small models exercising every layer of the vocabulary, defined here and nowhere else
def vocabulary_models() -> list[ModelSpec]:
    """Two test-only architectures covering every layer (stride, valid padding, Dropout…)."""
    return [
        ModelSpec(
            "test-convnet",
            [
                Conv2D(4, 3, stride=2, padding="same"),
                BatchNorm(),
                ReLU(),
                Conv2D(6, 3, padding="valid"),
                MaxPool2D(3, stride=2),
                ReLU(),
                GlobalAvgPool(),
                Dense(NUM_CLASSES),
            ],
        ),
        ModelSpec(
            "test-deep-mlp",
            [
                Flatten(),
                Dense(24),
                BatchNorm(),
                ReLU(),
                Dropout(0.0),
                Dense(16),
                ReLU(),
                Dense(NUM_CLASSES),
            ],
        ),
    ]


OPTIMIZERS = {
    "sgd": Optimizer("sgd"),
    "sgd-nesterov-wd": Optimizer("sgd", momentum=0.9, nesterov=True, weight_decay=5e-4),
    "adam": Optimizer("adam", weight_decay=1e-4),
    "adamw": Optimizer("adamw", weight_decay=0.05),
}


def _model_names() -> list[str]:
    return sorted(models())


def layer_examples() -> list[tuple[str, ModelSpec]]:
    """(id, model) for every example stack of every registered layer type (``Layer.examples``)."""
    return [
        (f"{kind}-{number}", ModelSpec(f"example-{kind.lower()}-{number}", stack))
        for kind, layer in sorted(layer_types().items())
        for number, stack in enumerate(layer.examples(), start=1)
    ]


def _layer_example_ids() -> list[str]:
    return [name for name, _ in layer_examples()]


DEEP_MODEL_LAYERS = 8
