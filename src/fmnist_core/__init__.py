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

from .data import Dataset, Split, load_dataset
from .data.augment import Augment
from .data.images import load_image, load_images
from .engine.backend import Backend, Engine, EngineConfig, Option, StepResult
from .engine.ejection import Ejections, EjectionTable
from .engine.lowering import Lowerings, LoweringTable
from .errors import (
    BackendError,
    ConfigError,
    DataError,
    ExportError,
    FmnistError,
    ImageError,
    StorageError,
    TrainingError,
    WeightsError,
)
from .hookspecs import hookimpl
from .io.exports import ExportTarget
from .io.formats import read_weights, write_weights
from .io.weights import WeightFormat, Weights
from .labels import LABELS, NUM_CLASSES
from .plugins import (
    Command,
    backends,
    export_targets,
    get_backend,
    get_model,
    layer_types,
    load_on_call,
    models,
    plugin_failures,
    weight_formats,
)
from .spec.layer import Layer, ParamSpec, hyper
from .spec.layers import (
    BUILTIN_LAYERS,
    GELU,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ReLU,
    Residual,
)
from .spec.model import ModelSpec, Recipe
from .spec.optimizers import Optimizer, Schedule
from .training.callbacks import Callback, EarlyStopping, ModelCheckpoint, PrintProgress, ProgressBar
from .training.config import TrainConfig
from .training.export import ExportResult, GateResult
from .training.metrics import EpochRecord, EvalResult, History, ProgressRecord
from .training.run_folder import RunFolder
from .training.trainer import Prediction, Trainer

__version__ = "0.4.0"

__all__ = [
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GELU",
    "GlobalAvgPool",
    "MaxPool2D",
    "ReLU",
    "Residual",
    "BUILTIN_LAYERS",
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
    "ExportError",
    "ExportResult",
    "ExportTarget",
    "FmnistError",
    "GateResult",
    "History",
    "ImageError",
    "Layer",
    "LoweringTable",
    "Lowerings",
    "Ejections",
    "EjectionTable",
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
    "TrainConfig",
    "RunFolder",
    "TrainingError",
    "WeightFormat",
    "Weights",
    "WeightsError",
    "backends",
    "export_targets",
    "get_backend",
    "get_model",
    "hookimpl",
    "layer_types",
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
