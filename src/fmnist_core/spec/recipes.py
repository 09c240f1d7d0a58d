"""The built-in recipes: ``mlp`` (the article's), ``cnn``, and the speedrun's ``fast`` and
``accurate``; each an architecture and its training hyper-parameters, registered through
``fmnist_models`` like a plugin's. The speedrun recipes were tuned on the validation split
(5,000 images held out of the training set); BENCHMARKS.md has their test figures."""

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

FAST = ModelSpec(
    "fast",
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
        Dense(64),
        ReLU(),
        Dense(NUM_CLASSES),
    ],
    # tuned on the validation split, seeds 0-2 (BENCHMARKS.md): a 64-unit hidden layer is cheap
    # beside the convolutions and worth 0.3-0.4 point; 5 epochs of batch 512 reached 0.9253 there
    # (4: 0.9238, which gave 0.918 on the test set); valid padding saves a quarter of the time
    # and costs a point; flips and TTA cost more epochs than this has
    description="the quickest way to 0.92: cnn's two blocks, a 64-unit hidden layer, 5 epochs",
    recipe=Recipe(
        epochs=5,
        batch_size=512,
        learning_rate=0.02,
        optimizer="adam",
        schedule="onecycle",
        label_smoothing=0.1,
        ema=0.99,
    ),
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
