"""The conformance suite every backend plugin runs against itself with pytest.

    from fmnist_core.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mine"
        options = {}          # backend options passed to Trainer

It uses a small synthetic dataset, so it needs no real data and runs in seconds.
"""

from __future__ import annotations

from .acceptance import RealDataAcceptance
from .conformance import BackendConformance
from .models import (
    DEEP_MODEL_LAYERS,
    OPTIMIZERS,
    layer_examples,
    synthetic_dataset,
    vocabulary_models,
)

__all__ = [
    "DEEP_MODEL_LAYERS",
    "OPTIMIZERS",
    "BackendConformance",
    "RealDataAcceptance",
    "layer_examples",
    "synthetic_dataset",
    "vocabulary_models",
]
