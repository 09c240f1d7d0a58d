"""The built-in recipes: ``mlp`` (the article's) and ``cnn``; each an architecture and its
training hyper-parameters, registered through ``fmnist_models`` like a plugin's."""

from __future__ import annotations

from ..labels import NUM_CLASSES
from .layers import BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, ReLU
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
