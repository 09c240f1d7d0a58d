"""The built-in recipes: ``mlp`` (the article's), ``cnn``, and the speedrun's ``fast``,
``balanced`` and ``accurate``; each an architecture and its training hyper-parameters,
registered through ``fmnist_models`` like a plugin's. The speedrun recipes were tuned on the
validation split (5,000 images held out of the training set); BENCHMARKS.md has their test
figures (mean and spread over seeds)."""

from __future__ import annotations

from ..labels import NUM_CLASSES
from .layers import BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Residual
from .model import ARTICLE_RECIPE, ModelSpec, Recipe

MLP = ModelSpec(
    "mlp",
    [Flatten(), Dense(20), ReLU(), Dense(NUM_CLASSES)],
    description="the article's 784-20-10 perceptron: Flatten, Dense(20), ReLU, Dense(10)",
    recipe=ARTICLE_RECIPE,
)

CNN = ModelSpec(
    "cnn",
    [
        Conv2D(16, 3),
        MaxPool2D(2),
        BatchNorm(),
        ReLU(),
        Conv2D(32, 3),
        MaxPool2D(2),
        BatchNorm(),
        ReLU(),
        Flatten(),
        Dense(NUM_CLASSES),
    ],
    # pooling before BatchNorm and ReLU: those run on a quarter of the values (BENCHMARKS.md)
    description="two conv-pool-BatchNorm-ReLU blocks (16, 32 filters) and a linear classifier",
    recipe=Recipe(
        epochs=4, batch_size=128, learning_rate=0.01, optimizer="adam", schedule="onecycle"
    ),
)


def _stem_and_two_blocks() -> list:
    """A 4×4 stride-2 stem (no full-resolution stage) and 3×3 blocks at 14×14 and 7×7."""
    return [
        Conv2D(16, 4, stride=2),
        BatchNorm(),
        ReLU(),
        Conv2D(32, 3),
        MaxPool2D(2),
        BatchNorm(),
        ReLU(),
        Conv2D(64, 3),
        MaxPool2D(2),
        BatchNorm(),
        ReLU(),
        Flatten(),
        Dense(128),
        ReLU(),
        Dense(NUM_CLASSES),
    ]


# Tuned on the validation split (BENCHMARKS.md, "Speedrun II"), seeds 0-2, 2-core AMD EPYC: the
# stride-2 stem instead of a 28×28 stage and its max-pooling costs half the epoch of 0.3's fast;
# the 7×7 block is cheap (a quarter of the pixels) and worth 0.4 point at 4 epochs; batch 256
# costs no more per epoch than 512 here and gains 0.2-0.3 point; flips with flip TTA pay from 6
# epochs on (0.926 there against 0.923 for 5 epochs without). Lookahead, whitening the stem from
# data patches, and a wider stem did not pay at these lengths.
FAST = ModelSpec(
    "fast",
    _stem_and_two_blocks(),
    description="the quickest way to 0.92: a 4×4 stride-2 stem, 3×3 blocks at 14×14 and 7×7, "
    "flips and flip TTA, 6 epochs",
    recipe=Recipe(
        epochs=6,
        batch_size=256,
        learning_rate=0.01,
        optimizer="adam",
        schedule="onecycle",
        augment="flip",
        label_smoothing=0.1,
        ema=0.99,
        tta=True,
    ),
)

BALANCED = ModelSpec(
    "balanced",
    _stem_and_two_blocks(),
    # the same network and settings as fast, trained longer (0.932 on the validation split)
    description="fast's network and settings, 10 epochs",
    recipe=FAST.recipe.replace(epochs=10),
)


def _residual(channels: int) -> Residual:
    return Residual([Conv2D(channels, 3), BatchNorm(), ReLU(), Conv2D(channels, 3), BatchNorm()])


ACCURATE = ModelSpec(
    "accurate",
    [
        Conv2D(32, 3),
        MaxPool2D(2),
        BatchNorm(),
        ReLU(),
        _residual(32),
        ReLU(),
        Conv2D(64, 3),
        MaxPool2D(2),
        BatchNorm(),
        ReLU(),
        _residual(64),
        ReLU(),
        Flatten(),
        Dense(NUM_CLASSES),
    ],
    # tuned on the validation split (BENCHMARKS.md): 15 epochs of this reached 0.938 there in
    # 10 minutes on 2 cores; 20 fit in the 15-minute budget
    description="a small ResNet (32, 64 channels, a residual block at each scale), flips and "
    "shifts, label smoothing, an average of the weights and flip TTA, 20 epochs",
    recipe=Recipe(
        epochs=20,
        batch_size=256,
        learning_rate=0.01,
        optimizer="adam",
        schedule="onecycle",
        augment="flip,translate:2",
        label_smoothing=0.1,
        ema=0.999,
        tta=True,
    ),
)
