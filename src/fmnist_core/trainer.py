"""``Trainer``: the public API that trains, evaluates, saves, loads and predicts on any backend."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import plugins
from .backend import Backend, Engine, EngineConfig, chunked_logits, not_data_parallel
from .callbacks import Callback, PrintProgress, ProgressBar
from .data import IMAGE_SHAPE, Dataset, load_dataset
from .errors import BackendError, ConfigError, TrainingError, WeightsError
from .formats import read_weights, write_weights
from .iteration import batch_count, epoch_blocks, epoch_permutation
from .labels import LABELS
from .metrics import EpochRecord, EvalResult, History, ProgressRecord, softmax
from .models import ModelSpec
from .optimizers import Optimizer, Schedule, as_optimizer, as_schedule
from .weights import Weights
from .workers import worker_rank

CHECKPOINT_NAME = "checkpoint.safetensors"


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
        **options: Any,
    ):
        for old, new in (("validate", "evaluate_each_epoch"), ("verify", "verify_checksums")):
            if old in options:  # renamed in 0.2; the old names work for one release
                import warnings

                warnings.warn(f"Trainer({old}=...) is now {new}=...; {old} goes in fmnist 0.3",
                              DeprecationWarning, stacklevel=2)
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
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
                or not math.isfinite(learning_rate) or learning_rate <= 0:
            raise ConfigError(f"learning_rate must be a positive number, got {learning_rate!r}",
                              fix="use e.g. learning_rate=0.1")
        if init not in ("core", "framework"):
            raise ConfigError(f"init must be 'core' or 'framework', got {init!r}")
        self.optimizer = as_optimizer(recipe.optimizer if optimizer is None else optimizer)
        self.schedule = as_schedule(recipe.schedule if schedule is None else schedule)
        self.backend: Backend = plugins.get_backend(backend)
        self.options = self.backend.check_options(options)
        self.rank, self.world_size = worker_rank()
        if self.world_size > 1 and not self.backend.distributed:
            raise not_data_parallel(self.backend.name, self.world_size)
        if self.world_size > batch_size:
            raise ConfigError(f"batch_size {batch_size} is smaller than the {self.world_size} workers",
                              fix=f"pass batch_size={self.world_size} or more")
        self._given_options = dict(options)  # recorded in run configs: the defaults may differ elsewhere
        self.epochs, self.batch_size, self.learning_rate, self.seed = epochs, batch_size, float(learning_rate), seed
        self.data_dir, self.init, self.log_every, self.verbose = data_dir, init, log_every, verbose
        self.steps_per_execution = steps_per_execution
        self.validation = validation or None
        self._splits: tuple | None = None
        self.callbacks, self.evaluate_each_epoch, self.verify_checksums = list(callbacks), evaluate_each_epoch, verify_checksums
        self.history = History()
        self.source_metadata: dict[str, str] = {}  # what the loaded weights file said
        self._test_accuracy: float | None = None  # the last test evaluation, recorded in saved weights
        self.stop_training = False
        self._data = data
        self._engine: Engine | None = None
        self._attached = False
        self._start_params: dict[str, np.ndarray] | None = None
        self._start_epoch = 0

    # -- configuration -------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The hyper-parameters, as recorded in run folders and weight files."""
        return {
            "backend": self.backend.name, "model": self.model.name, "epochs": self.epochs,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate, "seed": self.seed,
            "optimizer": self.optimizer.to_dict(), "schedule": self.schedule.to_dict(),
            "init": self.init, "log_every": self.log_every, "steps_per_execution": self.steps_per_execution,
            "validation": self.validation, "workers": self.world_size,
            "options": {k: v for k, v in self._given_options.items() if isinstance(v, (str, int, float, bool))},
            **({"device": self._engine.device} if self._engine is not None else {}),
        }

    @property
    def data(self) -> Dataset:
        """The dataset, found, verified and loaded on first use."""
        if self._data is None:
            self._data = load_dataset(self.data_dir, verify=self.verify_checksums)
        return self._data

    def splits(self) -> tuple:
        """(training split, validation split or None): the validation samples are carved out of
        the training set (stratified, the same for every run) when ``validation`` is set."""
        if self._splits is None:
            train = self.data.train
            if self.validation is None:
                self._splits = (train, None)
            else:
                from .data import validation_indices

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
            self._engine = self.backend.create_engine(EngineConfig(
                model=self.model, seed=self.seed, optimizer=self.optimizer,
                initial_params=initial, options=dict(self.options), rank=self.rank, world_size=self.world_size))
        return self._engine

    @property
    def params(self) -> dict[str, np.ndarray]:
        """A copy of the current parameters in the neutral layout."""
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

    def fit(self, epochs: int | None = None, *, checkpoint_dir: str | os.PathLike | None = None) -> History:
        """Train until ``epochs`` (default: the constructor's) and return the ``History``.

        With ``checkpoint_dir`` a checkpoint (weights, optimizer state, epoch, history) is
        written atomically after each epoch; ``Trainer.resume`` continues from it.
        """
        if not self.backend.trains:
            trainers = sorted(n for n, b in plugins.backends().items() if b.trains and b.unavailable_reason() is None)
            raise BackendError(f"backend {self.backend.name!r} runs inference only and cannot train",
                               fix=f"train with one of {', '.join(trainers)}, then export or load the weights here")
        if epochs is not None:
            _check_int("epochs", epochs, 1)
            self.epochs = epochs
        train, validation = self.splits()
        engine = self.engine
        if not self._attached:
            engine.attach(train.images, train.labels)
            self._attached = True
        callbacks = self._default_callbacks() + self.callbacks
        self.stop_training = False
        batches = batch_count(len(train), self.batch_size)
        for cb in callbacks:
            cb.on_train_begin(self)
        for epoch in range(self._start_epoch, self.epochs):
            for cb in callbacks:
                cb.on_epoch_begin(self, epoch)
            record = self._train_epoch(engine, epoch, len(train), batches, callbacks)
            if validation is not None:
                result = self.evaluate("validation")
                record.val_loss, record.val_accuracy = result.loss, result.accuracy
            if self.evaluate_each_epoch:
                result = self.evaluate()
                record.test_loss, record.test_accuracy = result.loss, result.accuracy
            self.history.epochs.append(record)
            self._start_epoch = epoch + 1
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir)
            for cb in callbacks:
                cb.on_epoch_end(self, record)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end(self, self.history)
        return self.history

    def step_scalars(self, epoch: int, first_step: int, steps: int) -> np.ndarray:
        """The optimizer's per-step scalars (steps, columns) from step ``first_step`` of ``epoch``."""
        per_epoch = batch_count(len(self.splits()[0]), self.batch_size)
        at = epoch * per_epoch + first_step + np.arange(steps)
        rates = self.schedule.rates(self.learning_rate, at, per_epoch, per_epoch * self.epochs)
        return self.optimizer.step_scalars(rates, at + 1)

    def _train_epoch(self, engine, epoch, size, batches, callbacks) -> EpochRecord:
        order = epoch_permutation(self.seed, epoch, size)
        snapshot = engine.get_params()
        optimizer_snapshot = engine.optimizer_state()
        loss_sum, correct, items, steps = 0.0, 0, 0, 0
        started = time.perf_counter()
        for block in epoch_blocks(order, self.batch_size, self.steps_per_execution):
            result = engine.train_steps(block, self.step_scalars(epoch, steps, len(block)))
            losses = np.asarray(result.losses, np.float64)
            if not np.all(np.isfinite(losses)):
                bad = steps + int(np.argmin(np.isfinite(losses))) + 1
                engine.set_params(snapshot)
                if optimizer_snapshot:
                    engine.set_optimizer_state(optimizer_snapshot)
                raise TrainingError(
                    f"the loss became {losses[bad - steps - 1]} at epoch {epoch + 1}, "
                    f"batch {bad}; the weights are back to where epoch {epoch + 1} began",
                    fix=f"lower the learning rate (now {self.learning_rate})")
            hits = np.asarray(result.correct)
            for row in range(len(block)):  # progress at every log_every-th batch, and at the end
                loss_sum += losses[row] * block.shape[1]
                correct += int(hits[row])
                items += block.shape[1]
                steps += 1
                if steps % self.log_every == 0 or steps == batches:
                    progress = ProgressRecord(epoch, steps, items, loss_sum / items, correct / items,
                                              float(losses[row]))
                    self.history.progress.append(progress)
                    for cb in callbacks:
                        cb.on_progress(self, progress, batches)
        seconds = time.perf_counter() - started
        return EpochRecord(epoch, loss_sum / items, correct / items, seconds, steps, items)

    # -- evaluation and prediction ---------------------------------------------------------
    def evaluate(self, split: str = "test") -> EvalResult:
        """Mean per-sample loss, accuracy and confusion matrix on ``split``: "test", "train" or
        "validation" (the held-out part of the training set, with ``validation=``)."""
        if split not in ("test", "train", "validation"):
            raise ConfigError(f"split must be 'test', 'train' or 'validation', got {split!r}")
        if split == "validation":
            data = self.splits()[1]
            if data is None:
                raise ConfigError("no validation split: this trainer was made without validation=",
                                  fix="pass validation=5000 (or a fraction) to Trainer")
        else:
            data = getattr(self.data, split)
        result = EvalResult.from_logits(chunked_logits(self.engine, data.images), data.labels)
        if split == "test":
            self._test_accuracy = result.accuracy  # recorded in saved weights (fmnist serve shows it)
        return result

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Logits of uint8 images (n, 28, 28)."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
            raise ConfigError(f"images must be uint8 of shape (n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}), "
                              f"got {images.dtype} {images.shape}",
                              fix="use fmnist_core.load_image to convert image files")
        return chunked_logits(self.engine, images)

    def predict(self, inputs: Iterable[str | os.PathLike] | str | os.PathLike | np.ndarray,
                output: str = "labels", *, on_error: str = "raise", max_pixels: int | None = None) -> list:
        """Predict image files, folders of images, or a uint8 array (n, 28, 28).

        ``output``: "labels" (names), "indices", "probabilities" (lists of 10 floats) or
        "predictions" (``Prediction`` objects with path, index, label and probabilities).
        ``on_error="skip"`` keeps going past unreadable images: their place in the result holds
        ``None`` (a ``Prediction`` with ``error`` set, for "predictions"); the default raises
        ``ImageError``. ``max_pixels`` limits an image's declared size (default
        ``fmnist_core.images.MAX_PIXELS``).
        """
        from .images import collect_image_paths, read_images

        if output not in ("labels", "indices", "probabilities", "predictions"):
            raise ConfigError(f"output must be labels, indices, probabilities or predictions, got {output!r}")
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
        results = dict(zip(paths, self._predict_array(images, paths, output), strict=True)) if len(images) else {}
        for item in bad:
            results[str(item.path)] = (Prediction(str(item.path), -1, "", (), item.error)
                                       if output == "predictions" else None)
        return [results[path] for path in order]

    def _predict_array(self, images: np.ndarray, paths: list[str], output: str) -> list:
        logits = self.logits(images)
        indices = logits.argmax(axis=1)
        if output == "indices":
            return [int(i) for i in indices]
        if output == "labels":
            return [LABELS[i] for i in indices]
        probs = softmax(logits)
        if output == "probabilities":
            return [[float(p) for p in row] for row in probs]
        return [Prediction(path, int(i), LABELS[i], tuple(float(p) for p in row))
                for path, i, row in zip(paths, indices, probs, strict=True)]

    # -- saving and loading ---------------------------------------------------------------
    def _weights(self) -> Weights:
        versions = {"fmnist-core": _version("fmnist-core"), **self.backend.versions()}
        metadata = {"backend": self.backend.name, "versions": json.dumps(versions),
                    "config": json.dumps(self.config()), "epochs_done": str(self._start_epoch),
                    "architecture": json.dumps(self.model.to_dict())}
        accuracy = self._test_accuracy if self._test_accuracy is not None else self.source_metadata.get("test_accuracy")
        if accuracy is not None:
            metadata["test_accuracy"] = str(accuracy)
        return Weights(self.model.name, self.engine.get_params(), metadata)

    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """Save the weights atomically; the format follows the suffix (default: safetensors).
        Data-parallel, only rank 0 writes (every worker holds the same weights)."""
        weights = self._weights()
        if self.rank == 0:
            write_weights(path, weights, format)
        return Path(path)

    def export(self, path: str | os.PathLike, format: str = "onnx") -> Path:
        """Export for serving without any framework: ``format="onnx"`` writes an ONNX model
        (uint8 images in; logits, probabilities, class_index out), needing only ``onnx``."""
        return self.save(path, format=format)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | None = None, *, format: str | None = None,
             **overrides: Any) -> Trainer:
        """A trainer holding the weights in ``path``, in any format an installed plugin reads.

        The backend recorded in the file is used unless ``backend`` is given (or it is not
        installed, then the best installed one is). ``fit()`` then trains further from these
        weights; to continue an interrupted run where it stopped, use ``Trainer.resume``.
        """
        weights = read_weights(path, format)
        config = _recorded_config(weights)
        if backend is None:
            recorded = config.get("backend") or weights.metadata.get("backend")
            usable = plugins.backends()
            if recorded in usable and usable[recorded].unavailable_reason() is None:
                backend = recorded
        kwargs = {k: config[k] for k in RECORDED if k in config}
        kwargs.update(config.get("options", {}) if backend in (None, config.get("backend")) else {})
        kwargs.update(overrides)
        trainer = cls(backend=backend, model=model_of(weights), **kwargs)
        trainer.set_params(trainer.model.check_params(weights.params, source=str(path)))
        trainer.source_metadata = dict(weights.metadata)
        return trainer

    def save_checkpoint(self, folder: str | os.PathLike) -> Path:
        """Write weights, optimizer state, epoch and history to ``folder`` atomically."""
        folder = Path(folder)
        weights = self._weights()
        for name, array in self.engine.optimizer_state().items():
            weights.params[f"optimizer.{name}"] = array
        weights.metadata["history"] = json.dumps(self.history.to_dict())
        path = folder / CHECKPOINT_NAME
        if self.rank == 0:
            write_weights(path, weights, "safetensors")
        return path

    @classmethod
    def resume(cls, folder: str | os.PathLike, **overrides: Any) -> Trainer:
        """A trainer that continues the run checkpointed in ``folder``; call ``fit()`` next."""
        path = Path(folder) / CHECKPOINT_NAME
        if not path.exists():
            raise WeightsError(f"{folder} holds no {CHECKPOINT_NAME}",
                               fix="pass a run folder written by `fmnist train` or fit(checkpoint_dir=...)")
        weights = read_weights(path, "safetensors")
        optimizer = {k[len("optimizer."):]: v for k, v in weights.params.items() if k.startswith("optimizer.")}
        weights.params = {k: v for k, v in weights.params.items() if not k.startswith("optimizer.")}
        config = _recorded_config(weights)
        kwargs = {k: config[k] for k in RECORDED if k in config}
        kwargs.update(config.get("options", {}))
        kwargs.update(overrides)
        trainer = cls(backend=config.get("backend"), model=model_of(weights), **kwargs)
        trainer.set_params(weights.params)
        trainer.history = History.from_dict(json.loads(weights.metadata.get("history", "{}")))
        trainer._start_epoch = int(weights.metadata.get("epochs_done", 0))
        if optimizer:
            trainer.engine.set_optimizer_state(optimizer)
        return trainer

    def __repr__(self) -> str:
        return (f"Trainer(backend={self.backend.name!r}, model={self.model.name!r}, epochs={self.epochs}, "
                f"batch_size={self.batch_size}, learning_rate={self.learning_rate}, seed={self.seed})")


RECORDED = ("epochs", "batch_size", "learning_rate", "seed", "optimizer", "schedule", "init", "log_every",
            "steps_per_execution", "validation")


def model_of(weights: Weights) -> ModelSpec:
    """The architecture of ``weights``: the registered model of that name, else the one recorded
    in the file (a user's own ``ModelSpec``)."""
    registered = plugins.models()
    if weights.model in registered:
        return registered[weights.model]
    recorded = weights.metadata.get("architecture")
    if recorded:
        try:
            return ModelSpec.from_dict(json.loads(recorded))
        except json.JSONDecodeError:
            pass
    return plugins.get_model(weights.model)  # the unknown-model error


def _recorded_config(weights: Weights) -> dict[str, Any]:
    try:
        return json.loads(weights.metadata.get("config", "{}"))
    except json.JSONDecodeError:
        return {}


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {value!r}",
                          fix=f"pass {name}={max(minimum, 1)} or more")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
