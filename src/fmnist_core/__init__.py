"""fmnist: train, evaluate and serve Fashion-MNIST classifiers on any framework through one API.

    from fmnist_core import Trainer
    trainer = Trainer(backend="numpy", epochs=5, seed=0)
    trainer.fit()
    print(trainer.evaluate().accuracy)

The package's folders are its layers, each importing only those below it: ``cli`` and ``apps``
(serve, tune, plots) on ``training`` (the Trainer, loop, checkpoints, callbacks, metrics), on
``engine`` (the backend contract, lowering, optimizer slots) and ``io`` (weight files), on
``spec`` (layers, models, optimizers) and ``data``; ``builtin`` holds fmnist's own plugins.
"""

from typing import TYPE_CHECKING

from . import _moved
from .data import Dataset, Split, load_dataset
from .data.augment import Augment
from .data.images import load_image, load_images
from .engine.backend import Backend, Engine, EngineConfig, Option, StepResult
from .engine.lowering import Lowerings, LoweringTable
from .errors import (
    BackendError,
    ConfigError,
    DataError,
    FmnistError,
    ImageError,
    StorageError,
    TrainingError,
    WeightsError,
)
from .hookspecs import hookimpl
from .io.formats import read_weights, write_weights
from .io.weights import WeightFormat, Weights
from .labels import LABELS, NUM_CLASSES
from .plugins import (
    Command,
    backends,
    get_backend,
    get_model,
    layer_types,
    lazy,
    load_on_call,
    models,
    plugin_failures,
    weight_formats,
)
from .spec.layer import Layer, ParamSpec, hyper
from .spec.layers import BUILTIN_LAYERS
from .spec.model import ModelSpec, Recipe
from .spec.optimizers import Optimizer, Schedule
from .training.callbacks import Callback, EarlyStopping, ModelCheckpoint, PrintProgress, ProgressBar
from .training.metrics import EpochRecord, EvalResult, History, ProgressRecord
from .training.trainer import Prediction, Trainer

__version__ = "0.1.0"

globals().update(BUILTIN_LAYERS)  # Dense, Conv2D, …: every built-in layer type by its name
if TYPE_CHECKING:  # the same names for type checkers (tests/core/test_import.py keeps them equal)
    from .spec.layers.activation import ReLU as ReLU
    from .spec.layers.batch_norm import BatchNorm as BatchNorm
    from .spec.layers.conv import Conv2D as Conv2D
    from .spec.layers.dense import Dense as Dense
    from .spec.layers.dropout import Dropout as Dropout
    from .spec.layers.flatten import Flatten as Flatten
    from .spec.layers.pooling import (
        AvgPool2D as AvgPool2D,
    )
    from .spec.layers.pooling import (
        GlobalAvgPool as GlobalAvgPool,
    )
    from .spec.layers.pooling import (
        MaxPool2D as MaxPool2D,
    )
    from .spec.layers.residual import Residual as Residual
_moved.install(__name__)

__all__ = [
    *sorted(BUILTIN_LAYERS),
    "Augment",
    "LABELS",
    "NUM_CLASSES",
    "Backend",
    "BackendError",
    "Callback",
    "Command",
    "ConfigError",
    "DataError",
    "Dataset",
    "EarlyStopping",
    "Engine",
    "EngineConfig",
    "EpochRecord",
    "EvalResult",
    "FmnistError",
    "History",
    "ImageError",
    "Layer",
    "LoweringTable",
    "Lowerings",
    "ModelCheckpoint",
    "ModelSpec",
    "Optimizer",
    "Option",
    "ParamSpec",
    "Prediction",
    "PrintProgress",
    "ProgressBar",
    "ProgressRecord",
    "Recipe",
    "Schedule",
    "Split",
    "StorageError",
    "StepResult",
    "Trainer",
    "TrainingError",
    "WeightFormat",
    "Weights",
    "WeightsError",
    "backends",
    "get_backend",
    "get_model",
    "hookimpl",
    "layer_types",
    "lazy",
    "load_on_call",
    "load_dataset",
    "load_image",
    "load_images",
    "models",
    "plugin_failures",
    "read_weights",
    "hyper",
    "weight_formats",
    "write_weights",
]
