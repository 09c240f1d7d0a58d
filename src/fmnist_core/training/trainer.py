"""``Trainer``: the public API that trains, evaluates, saves, loads and predicts on any backend.

The loop itself is ``fmnist_core.training.loop``; what files record, ``checkpoints``."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import plugins
from ..atomic import folder_lock
from ..data import Dataset, load_dataset
from ..data.augment import Augment, as_augment, flipped
from ..engine.backend import Backend, Engine, EngineConfig, chunked_logits, not_data_parallel
from ..errors import BackendError, ConfigError
from ..io.formats import read_weights, write_weights
from ..io.weights import Weights, architecture_of
from ..labels import LABELS
from ..spec.model import ModelSpec
from ..spec.optimizers import Optimizer, Schedule, as_optimizer, as_schedule
from . import checkpoints, loop
from .callbacks import Callback, PrintProgress, ProgressBar
from .ema import WeightAverage
from .metrics import EvalResult, History, softmax


@dataclass(frozen=True)
class Prediction:
    """One image's prediction."""

    path: str
    index: int
    label: str
    probabilities: tuple[float, ...]
    error: str | None = None  # set, with index -1, for an unreadable image (on_error="skip")


class Trainer:
    """Train, evaluate, save and predict with one backend.

    ``model`` is a registered recipe's name (``"mlp"``, the article's, or ``"cnn"``; ``fmnist
    models`` lists them) or your own ``ModelSpec``; ``epochs``, ``batch_size``,
    ``learning_rate``, ``optimizer`` and ``schedule`` left at ``None`` take the model's recipe.
    ``optimizer``: ``"sgd"``, ``"adam"``, ``"adamw"`` or an ``Optimizer`` (momentum, Nesterov,
    weight decay); ``schedule``: ``"constant"``, ``"step"``, ``"cosine"``, ``"onecycle"`` or a
    ``Schedule``. ``backend=None`` picks the best installed backend. ``init="core"`` starts from
    the core's seeded initial weights (identical on every backend); ``init="framework"`` uses
    the framework's own initialiser. ``verbose``: 0 silent, 1 progress bar, 2 the article's lines,
    ``"auto"`` a bar on a terminal and lines otherwise. ``steps_per_execution``: steps per engine
    call (one host round trip each), independent of ``log_every``. Extra keyword arguments are
    backend options (e.g. ``device="cuda"``, ``jit_compile=True``, ``keras_backend="torch"``).
    """

    def __init__(
        self,
        backend: str | None = None,
        model: str | ModelSpec = "mlp",
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        seed: int = 0,
        data_dir: str | os.PathLike | None = None,
        *,
        optimizer: str | Optimizer | dict | None = None,
        schedule: str | Schedule | dict | None = None,
        data: Dataset | None = None,
        init: str = "core",
        log_every: int = 100,
        steps_per_execution: int = 100,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] = (),
        evaluate_each_epoch: bool = False,
        validation: int | float | None = None,
        verify_checksums: bool = True,
        augment: str | Augment | dict | None = None,
        label_smoothing: float | None = None,
        ema: float | None = None,
        tta: bool | None = None,
        max_memory_gb: float = 8.0,
        **options: Any,
    ):
        for old, new in (("validate", "evaluate_each_epoch"), ("verify", "verify_checksums")):
            if old in options:  # renamed in 0.2; the old names work for one release
                import warnings

                warnings.warn(
                    f"Trainer({old}=...) is now {new}=...; {old} goes in fmnist 0.3",
                    DeprecationWarning,
                    stacklevel=2,
                )
                value = options.pop(old)
                evaluate_each_epoch = value if old == "validate" else evaluate_each_epoch
                verify_checksums = value if old == "verify" else verify_checksums
        self.model = model if isinstance(model, ModelSpec) else plugins.get_model(model)
        recipe = self.model.recipe
        epochs = recipe.epochs if epochs is None else epochs
        batch_size = recipe.batch_size if batch_size is None else batch_size
        learning_rate = recipe.learning_rate if learning_rate is None else learning_rate
        _check_int("epochs", epochs, 1)
        _check_int("batch_size", batch_size, 1)
        _check_int("log_every", log_every, 1)
        _check_int("steps_per_execution", steps_per_execution, 1)
        _check_int("seed", seed, 0)
        if (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, (int, float))
            or not math.isfinite(learning_rate)
            or learning_rate <= 0
        ):
            raise ConfigError(
                f"learning_rate must be a positive number, got {learning_rate!r}",
                fix="use e.g. learning_rate=0.1",
            )
        if init not in ("core", "framework"):
            raise ConfigError(f"init must be 'core' or 'framework', got {init!r}")
        self.optimizer = as_optimizer(recipe.optimizer if optimizer is None else optimizer)
        self.schedule = as_schedule(recipe.schedule if schedule is None else schedule)
        self.augment = as_augment(recipe.augment if augment is None else augment)
        self.label_smoothing = _check_fraction(
            "label_smoothing",
            recipe.label_smoothing if label_smoothing is None else label_smoothing,
        )
        self.ema = _check_fraction("ema", recipe.ema if ema is None else ema)
        self.tta = recipe.tta if tta is None else tta
        if not isinstance(self.tta, bool):
            raise ConfigError(f"tta must be True or False, got {self.tta!r}")
        _check_memory(self.model, batch_size, max_memory_gb)  # before anything is allocated
        self.backend: Backend = plugins.get_backend(backend)
        self.options = self.backend.check_options(options)
        self.rank, self.world_size = self.backend.worker_rank()
        if self.world_size > 1 and not self.backend.trains_data_parallel:
            raise not_data_parallel(self.backend.name, self.world_size)
        if self.world_size > batch_size:
            raise ConfigError(
                f"batch_size {batch_size} is smaller than the {self.world_size} workers",
                fix=f"pass batch_size={self.world_size} or more",
            )
        # recorded in run configs: the defaults may differ elsewhere
        self._given_options = dict(options)
        self.epochs, self.batch_size, self.learning_rate, self.seed = (
            epochs,
            batch_size,
            float(learning_rate),
            seed,
        )
        self.data_dir, self.init, self.log_every, self.verbose = data_dir, init, log_every, verbose
        self.steps_per_execution = steps_per_execution
        self.validation = validation or None
        self._splits: tuple | None = None
        self.callbacks, self.evaluate_each_epoch, self.verify_checksums = (
            list(callbacks),
            evaluate_each_epoch,
            verify_checksums,
        )
        self.history = History()
        self.source_metadata: dict[str, str] = {}  # what the loaded weights file said
        # the last test evaluation, recorded in saved weights
        self.test_accuracy: float | None = None
        self.epochs_done = 0  # epochs trained so far: the next fit() starts here
        self.weight_average: WeightAverage | None = None  # with ema: the evaluated weights
        self.stop_training = False
        self._data = data
        self._engine: Engine | None = None
        self._attached = False
        self._start_params: dict[str, np.ndarray] | None = None
        self._arrays: tuple | None = None  # (training split, validation split) of fit(x, y)
        self.arrays_digest = ""  # of fit(x, y)'s training arrays, recorded in configs

    # -- configuration -------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The hyper-parameters, as recorded in run folders and weight files."""
        return {
            "backend": self.backend.name,
            "model": self.model.name,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "optimizer": self.optimizer.to_dict(),
            "schedule": self.schedule.to_dict(),
            "init": self.init,
            "log_every": self.log_every,
            "steps_per_execution": self.steps_per_execution,
            "validation": self.validation,
            "evaluate_each_epoch": self.evaluate_each_epoch,
            "data": {"arrays": self.arrays_digest} if self.arrays_digest else "fashion-mnist",
            "augment": str(self.augment),
            "label_smoothing": self.label_smoothing,
            "ema": self.ema,
            "tta": self.tta,
            "workers": self.world_size,
            "options": {
                k: v
                for k, v in self._given_options.items()
                if isinstance(v, (str, int, float, bool))
            },
            **({"device": self._engine.device} if self._engine is not None else {}),
        }

    @property
    def data(self) -> Dataset:
        """The dataset, found, verified and loaded on first use."""
        if self._data is None:
            self._data = load_dataset(self.data_dir, verify=self.verify_checksums)
        return self._data

    def use_arrays(self, x, y, validation_data=None) -> None:
        """Train on your arrays from now on (``fit(x, y)`` calls it): checked and kept as the
        training split, ``validation_data`` as the validation split."""
        from ..data.arrays import as_split, digest

        train = as_split(x, y, "x, y")
        held = (
            as_split(*validation_data, "validation_data") if validation_data is not None else None
        )
        if self.arrays_digest and digest(train) != self.arrays_digest:
            raise ConfigError(
                "these arrays are not the ones this run was trained on (their digest differs)",
                fix="resume with the same x, y, or start a new Trainer",
            )
        self._arrays, self._splits, self._attached = (train, held), (train, held), False
        self.arrays_digest = digest(train)

    def splits(self) -> tuple:
        """(training split, validation split or None): your arrays (``fit(x, y)``), else
        Fashion-MNIST's training set, the validation samples carved out of it (stratified, the
        same for every run) when ``validation`` is set."""
        if self._arrays is not None:
            return self._arrays
        if self._splits is None:
            train = self.data.train
            if self.validation is None:
                self._splits = (train, None)
            else:
                from ..data import validation_indices

                kept, held = validation_indices(train.labels, self.validation)
                self._splits = (train.take(kept), train.take(held))
        return self._splits

    @property
    def engine(self) -> Engine:
        """The backend's engine (model, optimizer, device), built on first use."""
        if self._engine is None:
            if self._start_params is not None:
                initial = self._start_params
            elif self.init == "core":
                initial = self.model.init_params(self.seed)
            else:
                initial = None
            self._engine = self.backend.create_engine(
                EngineConfig(
                    model=self.model,
                    seed=self.seed,
                    optimizer=self.optimizer,
                    initial_params=initial,
                    options=dict(self.options),
                    rank=self.rank,
                    world_size=self.world_size,
                    label_smoothing=self.label_smoothing,
                )
            )
        return self._engine

    def attached_engine(self) -> Engine:
        """The engine, holding the training split (attached once)."""
        engine = self.engine
        if not self._attached:
            train = self.splits()[0]
            engine.attach(train.images, train.labels)
            self._attached = True
        return engine

    def detached(self) -> None:
        """The engine no longer holds the whole training split (augmented blocks replace it)."""
        self._attached = False

    @property
    def params(self) -> dict[str, np.ndarray]:
        """A copy of the current parameters in the neutral layout."""
        return self.engine.get_params()

    def evaluated_params(self) -> dict[str, np.ndarray]:
        """The weights that are evaluated, saved and exported: the average with ``ema``."""
        if self.weight_average is not None:
            return self.weight_average.params()
        return self.engine.get_params()

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Replace the parameters (neutral layout); shapes are checked against the model."""
        checked = self.model.check_params(params)
        if self._engine is None:
            self._start_params = checked
        else:
            self._engine.set_params(checked)

    # -- training -----------------------------------------------------------------------
    def _default_callbacks(self) -> list[Callback]:
        verbose = self.verbose if self.rank == 0 else 0  # data-parallel: only rank 0 reports
        if verbose == "auto":
            verbose = 1 if sys.stderr.isatty() else 2
        return {0: [], 1: [ProgressBar()], 2: [PrintProgress()]}.get(int(verbose), [])

    def fit(
        self,
        x: ArrayLike | None = None,
        y: ArrayLike | None = None,
        *,
        epochs: int | None = None,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
    ) -> History:
        """Train until ``epochs`` (default: the constructor's) and return the ``History``.

        By default on Fashion-MNIST's training set (less the ``validation`` split); with ``x, y``
        on your own arrays: images ``(n, 28, 28)`` or ``(n, 784)``, uint8 in 0..255 or floats
        in [0, 1] (kept as 8-bit, as the dataset is), labels 0..9; ``validation_data=(x, y)``
        is then reported every epoch. With ``checkpoint_dir`` a checkpoint (weights, optimizer
        state, epoch, history) is written atomically after each epoch; ``Trainer.resume``
        continues from it (a run on arrays is resumed by passing the same arrays to ``fit``).
        """
        if x is not None or y is not None or validation_data is not None:
            self.use_arrays(x, y, validation_data)
        elif self.arrays_digest and self._arrays is None:
            raise ConfigError(
                "this run was trained on arrays, which a checkpoint does not hold",
                fix="pass the same x, y (and validation_data) to fit()",
            )
        if not self.backend.trains:
            trainers = sorted(
                n
                for n, b in plugins.backends().items()
                if b.trains and b.unavailable_reason() is None
            )
            raise BackendError(
                f"backend {self.backend.name!r} runs inference only and cannot train",
                fix=f"train with one of {', '.join(trainers)}, "
                "then export or load the weights here",
            )
        if epochs is not None:
            _check_int("epochs", epochs, 1)
            self.epochs = epochs
        callbacks = self._default_callbacks() + self.callbacks
        if checkpoint_dir is None or self.rank != 0:
            return loop.fit(self, callbacks, checkpoint_dir)
        with folder_lock(checkpoint_dir):  # one process writes a run folder at a time
            return loop.fit(self, callbacks, checkpoint_dir)

    def step_scalars(self, epoch: int, first_step: int, steps: int) -> np.ndarray:
        """The optimizer's per-step scalars (steps, columns) from step ``first_step`` of
        ``epoch``."""
        return loop.step_scalars(self, epoch, first_step, steps)

    # -- evaluation and prediction ---------------------------------------------------------
    def evaluate(
        self,
        split: str | ArrayLike = "test",
        y: ArrayLike | None = None,
        *,
        tta: bool | None = None,
    ) -> EvalResult:
        """Mean per-sample loss, accuracy and confusion matrix on ``split``: "test", "train" or
        "validation" (the held-out part of the training set, with ``validation=``, or
        ``validation_data``), or on your arrays (``evaluate(x, y)``, as ``fit`` takes them), of
        the evaluated weights (the average, with ``ema``). ``tta=True`` averages each image's
        logits with its mirror image's (default: the recipe's ``tta``)."""
        if not isinstance(split, str):
            from ..data.arrays import as_split

            data = as_split(split, y, "x, y")
        elif split not in ("test", "train", "validation"):
            raise ConfigError(f"split must be 'test', 'train' or 'validation', got {split!r}")
        elif split == "validation":
            data = self.splits()[1]
            if data is None:
                raise ConfigError(
                    "no validation split: this trainer was made without validation=",
                    fix="pass validation=5000 (or a fraction) to Trainer, or fit(validation_data=)",
                )
        elif split == "train" and self._arrays is not None:
            data = self._arrays[0]
        else:
            data = getattr(self.data, split)
        result = EvalResult.from_logits(self._logits(data.images, tta), data.labels)
        if isinstance(split, str) and split == "test":
            self.test_accuracy = result.accuracy  # recorded in saved weights (serve shows it)
        return result

    def logits(self, images: np.ndarray, *, tta: bool | None = None) -> np.ndarray:
        """Logits of images (n, 28, 28) (or as ``fit`` takes them), by the evaluated weights
        (``tta`` as in ``evaluate``)."""
        from ..data.arrays import as_images

        images = as_images(images, "images")
        return self._logits(images, tta)

    def _logits(self, images: np.ndarray, tta: bool | None) -> np.ndarray:
        with self.evaluated_weights():
            logits = chunked_logits(self.engine, images)
            if self.tta if tta is None else tta:
                logits = (logits + chunked_logits(self.engine, flipped(images))) / np.float32(2)
        return logits

    @contextlib.contextmanager
    def evaluated_weights(self):
        """Inside the block the engine holds the weights that are evaluated and saved: the
        average of the weights when training with ``ema``, else the weights themselves."""
        if self.weight_average is None:
            yield
            return
        training = self.engine.get_params()
        self.engine.set_params(self.weight_average.params())
        try:
            yield
        finally:
            self.engine.set_params(training)

    def predict(
        self,
        inputs: Iterable[str | os.PathLike] | str | os.PathLike | np.ndarray,
        output: str = "labels",
        *,
        on_error: str = "raise",
        max_pixels: int | None = None,
        tta: bool | None = None,
    ) -> list:
        """Predict image files, folders of images, or a uint8 array (n, 28, 28).

        ``output``: "labels" (names), "indices", "probabilities" (lists of 10 floats) or
        "predictions" (``Prediction`` objects with path, index, label and probabilities).
        ``on_error="skip"`` keeps going past unreadable images: their place in the result holds
        ``None`` (a ``Prediction`` with ``error`` set, for "predictions"); the default raises
        ``ImageError``. ``max_pixels`` limits an image's declared size (default
        ``fmnist_core.data.images.MAX_PIXELS``). ``tta`` as in ``evaluate``.
        """
        from ..data.images import collect_image_paths, read_images

        if output not in ("labels", "indices", "probabilities", "predictions"):
            raise ConfigError(
                f"output must be labels, indices, probabilities or predictions, got {output!r}"
            )
        bad = []
        if isinstance(inputs, np.ndarray):
            images = inputs[None] if inputs.ndim == 2 else inputs
            paths = [f"<array {i}>" for i in range(len(images))]
            order = paths
        else:
            if isinstance(inputs, (str, os.PathLike)):
                inputs = [inputs]
            listed = collect_image_paths(inputs)
            order = [str(p) for p in listed]
            found, images, bad = read_images(listed, max_pixels=max_pixels, on_error=on_error)
            paths = [str(p) for p in found]
        results = (
            dict(zip(paths, self._predict_array(images, paths, output, tta), strict=True))
            if len(images)
            else {}
        )
        for item in bad:
            results[str(item.path)] = (
                Prediction(str(item.path), -1, "", (), item.error)
                if output == "predictions"
                else None
            )
        return [results[path] for path in order]

    def _predict_array(self, images: np.ndarray, paths: list[str], output: str, tta=None) -> list:
        logits = self.logits(images, tta=tta)
        indices = logits.argmax(axis=1)
        if output == "indices":
            return [int(i) for i in indices]
        if output == "labels":
            return [LABELS[i] for i in indices]
        probs = softmax(logits)
        if output == "probabilities":
            return [[float(p) for p in row] for row in probs]
        return [
            Prediction(path, int(i), LABELS[i], tuple(float(p) for p in row))
            for path, i, row in zip(paths, indices, probs, strict=True)
        ]

    # -- saving and loading ---------------------------------------------------------------
    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """Save the weights atomically; the format follows the suffix (default: safetensors).
        Data-parallel, only rank 0 writes (every worker holds the same weights)."""
        weights = checkpoints.weights_of(self)
        if self.rank == 0:
            write_weights(path, weights, format)
        return Path(path)

    def export(self, path: str | os.PathLike, format: str = "onnx") -> Path:
        """Export for serving without any framework: ``format="onnx"`` writes an ONNX model
        (uint8 images in; logits, probabilities, class_index out), needing only ``onnx``."""
        return self.save(path, format=format)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        backend: str | None = None,
        *,
        format: str | None = None,
        **overrides: Any,
    ) -> Trainer:
        """A trainer holding the weights in ``path``, in any format an installed plugin reads,
        or a run folder of ``fmnist train`` (its ``weights.safetensors``).

        The backend recorded in the file is used unless ``backend`` is given (or it is not
        installed, then the best installed one is). ``fit()`` then trains further from these
        weights; to continue an interrupted run where it stopped, use ``Trainer.resume``.
        """
        path = checkpoints.weights_in(path)
        weights = read_weights(path, format)
        config = checkpoints.recorded_config(weights)
        if backend is None:
            recorded = config.get("backend") or weights.metadata.get("backend")
            usable = plugins.backends()
            if recorded in usable and usable[recorded].unavailable_reason() is None:
                backend = recorded
        trainer = cls._from_weights(
            weights,
            backend,
            config,
            str(path),
            with_options=backend in (None, config.get("backend")),
            overrides=overrides,
        )
        trainer.source_metadata = dict(weights.metadata)
        return trainer

    def save_checkpoint(self, folder: str | os.PathLike) -> Path:
        """Write weights, optimizer state, epoch and history to ``folder`` atomically."""
        return checkpoints.write_checkpoint(self, folder)

    @classmethod
    def resume(cls, folder: str | os.PathLike, **overrides: Any) -> Trainer:
        """A trainer that continues the run checkpointed in ``folder``; call ``fit()`` next."""
        weights, optimizer, average, history, epochs_done = checkpoints.read_checkpoint(folder)
        config = checkpoints.recorded_config(weights)
        trainer = cls._from_weights(
            weights,
            config.get("backend"),
            config,
            str(folder),
            with_options=True,
            overrides=overrides,
        )
        trainer.history, trainer.epochs_done = history, epochs_done
        recorded = config.get("data")
        trainer.arrays_digest = recorded.get("arrays", "") if isinstance(recorded, dict) else ""
        if optimizer:
            trainer.engine.set_optimizer_state(optimizer)
        if average and trainer.ema:
            trainer.weight_average = WeightAverage(trainer.ema, weights.params)
            trainer.weight_average.load(average)
        return trainer

    @classmethod
    def _from_weights(
        cls,
        weights: Weights,
        backend: str | None,
        config: dict,
        source: str,
        *,
        with_options: bool,
        overrides: dict[str, Any],
    ) -> Trainer:
        kwargs = {**checkpoints.recorded_arguments(config, with_options), **overrides}
        trainer = cls(backend=backend, model=architecture_of(weights), **kwargs)
        trainer.set_params(trainer.model.check_params(weights.params, source=source))
        return trainer

    def __repr__(self) -> str:
        return (
            f"Trainer(backend={self.backend.name!r}, model={self.model.name!r}, "
            f"epochs={self.epochs}, "
            f"batch_size={self.batch_size}, learning_rate={self.learning_rate}, seed={self.seed})"
        )


def _check_memory(model: ModelSpec, batch_size: int, limit_gb: float) -> None:
    """A model that training would need more memory for than ``limit_gb`` is refused from its
    shapes alone (a recorded architecture or a JSON file can declare anything)."""
    params, activations = model.memory_estimate(batch_size)
    need = (params + activations) / 2**30
    if need > limit_gb:
        raise ConfigError(
            f"model {model.name!r} would need about {need:,.1f} GiB to train "
            f"({model.count_params():,} parameters, {activations / 2**30:,.1f} GiB of "
            f"activations per batch of {batch_size}); the limit is {limit_gb:g} GiB",
            fix="use a smaller model or batch, or raise the limit "
            "(max_memory_gb=, --max-memory-gb)",
        )


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(
            f"{name} must be a number in [0, 1), got {value!r}", fix=f"use e.g. {name}=0.1"
        )
    return float(value)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"{name} must be an integer ≥ {minimum}, got {value!r}",
            fix=f"pass {name}={max(minimum, 1)} or more",
        )
