"""``Trainer``, a facade: its settings are a ``TrainConfig`` (``config``), the loop a ``Loop``,
what the run has done a ``RunState``, its data ``RunData``, saving and loading ``checkpoints``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from .. import plugins
from ..data import Dataset
from ..data.dataset import Split
from ..engine.backend import Backend, Engine, EngineConfig, check_trains, checked_workers
from ..engine.precision import resolve_precision
from ..errors import ConfigError
from ..io.formats import write_weights
from ..spec.model import ModelSpec
from . import checkpoints  # fmt: skip
from . import config as settings
from .callbacks import Callback, progress_callbacks
from .config import TrainConfig
from .export import ExportResult, export_trainer
from .loop import Loop, LoopData, RunState, evaluated_logits
from .metrics import EvalResult, History
from .predict import Prediction, predict
from .run_data import RunData

__all__ = ["Prediction", "Trainer"]

Inputs = Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | np.ndarray


class Trainer:
    """Train, evaluate, save and predict with one backend.

    ``model`` is a registered recipe's name (``fmnist models`` lists them) or your own
    ``ModelSpec``. Every other keyword argument is either a training setting (``epochs``,
    ``batch_size``, ``learning_rate``, ``optimizer``, ``schedule``, ``augment``, ``seed``, …:
    the fields of ``TrainConfig``, which documents each; left out, the model's recipe decides)
    or a backend option (``device="cuda"``, ``jit_compile=True``, …). ``config=`` gives the
    settings as one ``TrainConfig``. ``backend=None`` picks the best installed backend.
    ``verbose``: 0 silent, 1 progress bar, 2 the article's lines, ``"auto"`` a bar on a terminal
    and lines otherwise. Settings read as attributes: ``trainer.epochs``.
    """

    def __init__(
        self,
        backend: str | None = None,
        model: str | ModelSpec = "mlp",
        *,
        config: TrainConfig | None = None,
        data: Dataset | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        verify_checksums: bool = True,
        callbacks: Sequence[Callback] = (),
        verbose: int | str = "auto",
        **settings_and_options: Any,
    ):
        given, options = settings.split(settings_and_options)
        self.model = model if isinstance(model, ModelSpec) else plugins.get_model(model)
        self.config = (config or TrainConfig()).replace(**given).resolve(self.model.recipe)
        settings.check_memory(self.model, self.config)  # before anything is allocated
        self.backend: Backend = plugins.get_backend(backend)
        self.options = self.backend.check_options(options)
        _ = self.computes_in  # a precision the backend lacks is refused here
        self.rank, self.world_size = checked_workers(self.backend, self.config.batch_size)
        self._given_options = dict(options)  # recorded: the defaults may differ elsewhere
        self.run_data = RunData(data, data_dir, verify_checksums, self.config.validation)
        self.verbose, self.callbacks, self.state = verbose, list(callbacks), RunState()
        self.source_metadata: dict[str, str] = {}  # what the loaded weights file said
        self.test_accuracy: float | None = None  # the last test evaluation, saved with weights
        self._engine: Engine | None = None
        self._start_params: dict[str, np.ndarray] | None = None  # set before the engine exists

    def __getattr__(self, name: str) -> Any:
        if name in settings.NAMES and "config" in self.__dict__:  # trainer.epochs: the setting
            return getattr(self.__dict__["config"], name)
        if name in RunState.__dataclass_fields__ and "state" in self.__dict__:
            return getattr(self.__dict__["state"], name)
        raise AttributeError(f"'Trainer' object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in settings.NAMES:
            raise AttributeError(f"use trainer.config = trainer.config.replace({name}=...)")
        if name in RunState.__dataclass_fields__:
            setattr(self.state, name, value)  # callbacks set trainer.stop_training
        else:
            object.__setattr__(self, name, value)

    def recorded(self) -> dict[str, Any]:
        """What run folders and weight files record: the settings, backend, model, data."""
        return checkpoints.recorded(self)

    # -- data and engine -----------------------------------------------------------------------
    @property
    def computes_in(self) -> str:
        """The ``precision`` setting resolved for this backend and CPU: ``"float32"`` or
        ``"bfloat16"`` (``ConfigError`` for one the backend lacks)."""
        backend, wanted = self.backend, self.config.precision
        pays = wanted == "auto" and backend.bfloat16_pays(self.options)
        return resolve_precision(wanted, backend.name, backend.precisions, pays)

    @property
    def data(self) -> Dataset:
        """The dataset, found, verified and loaded on first use."""
        return self.run_data.dataset

    def splits(self) -> tuple[Split, Split | None]:
        """(training split, validation split or None): your arrays (``fit(x, y)``), else the
        training set, ``validation`` images held out of it (stratified, the same every run)."""
        return self.run_data.splits()

    @property
    def engine(self) -> Engine:
        """The backend's engine (model, optimizer, device), built on first use."""
        if self._engine is None:
            initial = self._start_params
            if initial is None and self.config.init == "core":
                initial = self.model.init_params(self.config.seed)
            c = self.config
            self._engine = self.backend.create_engine(
                EngineConfig(self.model, c.replace(precision=self.computes_in), initial,
                             dict(self.options), self.rank, self.world_size)
            )  # fmt: skip
        return self._engine

    def loop(
        self, callbacks: Sequence[Callback] = (), after_epoch: Callable[[], object] | None = None
    ) -> Loop:
        """A ``Loop`` over this trainer's engine, settings, splits and state."""
        train, validation = self.splits()
        test = None if self.run_data.on_arrays else (lambda: self.data.test)
        data = LoopData(train, validation, test)
        return Loop(self.engine, self.config, data, self.state, callbacks, owner=self,
                    after_epoch=after_epoch)  # fmt: skip

    @property
    def params(self) -> dict[str, np.ndarray]:
        """A copy of the current parameters in the neutral layout."""
        return self.engine.get_params()

    def evaluated_params(self) -> dict[str, np.ndarray]:
        """The weights that are evaluated, saved and exported: the average with ``ema``."""
        average = self.state.weight_average
        return average.params() if average is not None else self.engine.get_params()

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Replace the parameters (neutral layout); shapes are checked against the model."""
        checked = self.model.check_params(params)
        if self._engine is None:
            self._start_params = checked
        else:
            self._engine.set_params(checked)

    # -- training -------------------------------------------------------------------------------
    def fit(
        self,
        x: ArrayLike | None = None,
        y: ArrayLike | None = None,
        *,
        epochs: int | None = None,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
    ) -> History:
        """Train until ``epochs`` (default: the config's); the ``History``. On the training set
        (less ``validation``), or on your arrays ``x, y`` (images ``(n, 28, 28)`` or ``(n, 784)``,
        uint8 or floats in [0, 1]; labels 0..9; ``validation_data=(x, y)`` reported each epoch).
        ``checkpoint_dir``: a checkpoint each epoch, which ``Trainer.resume`` continues."""
        if x is not None or y is not None or validation_data is not None:
            self.run_data.use_arrays(x, y, validation_data)
            self.state.attached = False
        elif self.run_data.arrays_digest and not self.run_data.on_arrays:
            raise ConfigError(
                "this run was trained on arrays, which a checkpoint does not hold",
                fix="pass the same x, y (and validation_data) to fit()",
            )
        check_trains(self.backend)
        if epochs is not None:
            self.config = self.config.replace(epochs=epochs)
        shown = progress_callbacks(self.verbose if self.rank == 0 else 0)  # rank 0 reports
        if checkpoint_dir is None or self.rank != 0:
            return self.loop([*shown, *self.callbacks]).fit()
        folder = checkpoints.RunFolder(checkpoint_dir)
        with folder.lock():  # one process writes a run folder at a time
            save = lambda: checkpoints.write_checkpoint(self, folder.path)  # noqa: E731
            return self.loop([*shown, *self.callbacks], after_epoch=save).fit()

    # -- evaluation and prediction ----------------------------------------------------------------
    def evaluate(self, split: str | ArrayLike = "test", y: ArrayLike | None = None, *,
                 tta: bool | None = None) -> EvalResult:  # fmt: skip
        """Mean per-sample loss, accuracy and confusion matrix of the evaluated weights (the
        average, with ``ema``) on "test", "train", "validation" or your arrays (``x, y``).
        ``tta=True`` averages each image's logits with its mirror image's (default: config)."""
        if not isinstance(split, str):
            from ..data.arrays import as_split

            data = as_split(split, y, "x, y")
        else:
            data = self.run_data.split(split)
        result = EvalResult.from_logits(self._logits(data.images, tta), data.labels)
        if isinstance(split, str) and split == "test":
            self.test_accuracy = result.accuracy  # recorded in saved weights (serve shows it)
        return result

    def logits(self, images: np.ndarray, *, tta: bool | None = None) -> np.ndarray:
        """Logits of images (n, 28, 28) (or as ``fit`` takes them), by the evaluated weights."""
        from ..data.arrays import as_images

        return self._logits(as_images(images, "images"), tta)

    def _logits(self, images: np.ndarray, tta: bool | None) -> np.ndarray:
        tta = self.config.tta if tta is None else tta
        return evaluated_logits(self.engine, self.state.weight_average, images, bool(tta))

    def predict(self, inputs: Inputs, output: str = "labels", *, on_error: str = "raise",
                max_pixels: int | None = None, tta: bool | None = None) -> list[Any]:  # fmt: skip
        """Predict image files, folders of images, or a uint8 array (n, 28, 28); ``output``:
        "labels", "indices", "probabilities" or "predictions" (``Prediction`` objects).
        ``on_error="skip"`` puts ``None`` (an errored ``Prediction``) for unreadable images.
        ``max_pixels`` limits an image's declared size. ``tta`` as in ``evaluate``."""
        logits = lambda images: self.logits(images, tta=tta)  # noqa: E731
        return predict(logits, inputs, output, on_error, max_pixels)

    # -- saving and loading ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Save the weights atomically; the format follows the suffix (default: safetensors).
        Data-parallel, only rank 0 writes (every worker holds the same weights)."""
        weights = checkpoints.weights_of(self)
        if self.rank == 0:
            write_weights(path, weights, format)
        return Path(path)

    def export(
        self, path: str | os.PathLike[str], format: str = "onnx", *, gate: bool = True
    ) -> ExportResult:
        """Write a deployable artifact (``format``: an export target, ``fmnist export --list``
        lists the installed ones), run it with its own runtime on the test set and keep it
        only if it behaves like this model; ``gate=False`` keeps it whatever the scores. Returns
        an ``ExportResult`` (``.path``, ``.gate``: the scores, also in the artifact's metadata)."""
        return cast(ExportResult, export_trainer(self, path, format, gate))

    @classmethod
    def load(cls, path: str | os.PathLike[str], backend: str | None = None, *,
             format: str | None = None,
             **overrides: Any) -> Trainer:  # fmt: skip
        """A trainer holding the weights in ``path`` (any format an installed plugin reads, or
        a run folder). The recorded backend is used unless ``backend`` is given or it is not
        installed. ``fit()`` trains further; ``Trainer.resume`` continues an interrupted run."""
        return cast(Trainer, checkpoints.load(cls, path, backend, format, overrides))

    def save_checkpoint(self, folder: str | os.PathLike[str]) -> Path:
        """Write weights, optimizer state, epoch and history to ``folder`` atomically."""
        return checkpoints.write_checkpoint(self, folder)

    @classmethod
    def resume(cls, folder: str | os.PathLike[str], **overrides: Any) -> Trainer:
        """A trainer that continues the run checkpointed in ``folder``; call ``fit()`` next."""
        return cast(Trainer, checkpoints.resume(cls, folder, overrides))

    def __repr__(self) -> str:
        c = self.config
        shown = ", ".join(f"{k}={getattr(c, k)!r}" for k in ("epochs", "batch_size", "seed"))
        return f"Trainer(backend={self.backend.name!r}, model={self.model.name!r}, {shown})"
