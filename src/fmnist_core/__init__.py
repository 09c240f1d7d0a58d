"""fmnist: train, evaluate and serve Fashion-MNIST classifiers on any framework through one API.

    from fmnist_core import Trainer
    trainer = Trainer(backend="numpy", epochs=5, seed=0)
    trainer.fit()
    print(trainer.evaluate().accuracy)
"""

from .backend import Backend, Engine, EngineConfig, Option, StepResult
from .callbacks import Callback, EarlyStopping, ModelCheckpoint, PrintProgress, ProgressBar
from .data import Dataset, Split, load_dataset
from .errors import (
                     BackendError,
                     ConfigError,
                     DataError,
                     FmnistError,
                     ImageError,
                     TrainingError,
                     WeightsError,
)
from .formats import read_weights, write_weights
from .hookspecs import hookimpl
from .images import load_image, load_images
from .labels import LABELS, NUM_CLASSES
from .metrics import EpochRecord, EvalResult, History, ProgressRecord
from .models import (
                     BatchNorm,
                     Conv2D,
                     Dense,
                     Dropout,
                     Flatten,
                     GlobalAvgPool,
                     MaxPool2D,
                     ModelSpec,
                     ParamSpec,
                     Recipe,
                     ReLU,
)
from .optimizers import Optimizer, Schedule
from .plugins import backends, get_backend, get_model, models, plugin_failures, weight_formats
from .trainer import Prediction, Trainer
from .weights import WeightFormat, Weights

__version__ = "0.1.0"

__all__ = [
    "BatchNorm", "Conv2D", "Dense", "Dropout", "Flatten", "GlobalAvgPool", "MaxPool2D", "Optimizer",
    "Option", "ReLU", "Recipe", "Schedule",
    "LABELS", "NUM_CLASSES", "Backend", "BackendError", "Callback", "ConfigError", "DataError",
    "Dataset", "EarlyStopping", "Engine", "EngineConfig", "EpochRecord", "EvalResult",
    "FmnistError", "History", "ImageError", "ModelCheckpoint", "ModelSpec", "ParamSpec",
    "Prediction", "PrintProgress", "ProgressBar", "ProgressRecord", "Split", "StepResult",
    "Trainer", "TrainingError", "WeightFormat", "Weights", "WeightsError", "backends",
    "get_backend", "get_model", "hookimpl", "load_dataset", "load_image", "load_images", "models",
    "plugin_failures", "read_weights", "weight_formats", "write_weights",
]
