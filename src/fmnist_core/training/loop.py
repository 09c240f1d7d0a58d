"""The training loop, written once for every backend: epochs, the seeded order, blocks of steps
handed to the engine, augmentation, the optimizer's per-step scalars, the average of the weights,
progress, callbacks, and what happens when the loss diverges.

``Loop(engine, config, data, state, callbacks)`` needs an engine, a resolved ``TrainConfig``,
the splits and a ``RunState``; it knows nothing of ``Trainer``. Callbacks receive ``owner`` (the
``Trainer`` that made the loop, or the loop itself).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.augment import as_augment
from ..data.dataset import Split
from ..engine.allocator import keep_freed_memory
from ..engine.backend import Engine, StepResult, chunked_logits
from ..engine.batching import epoch_blocks, epoch_permutation, epoch_steps
from ..errors import TrainingError
from .callbacks import Callback
from .config import ResolvedConfig
from .ema import WeightAverage
from .metrics import EpochRecord, EvalResult, History, ProgressRecord


@dataclass
class RunState:
    """What a run has done so far, saved in checkpoints: the history, the epochs done, the
    average of the weights (with ``ema``) and whether a callback asked to stop."""

    history: History = field(default_factory=History)
    epochs_done: int = 0
    weight_average: WeightAverage | None = None
    stop_training: bool = False
    attached: bool = False  # the engine holds the whole training split


@dataclass
class LoopData:
    """The splits a loop trains and reports on; ``test`` is loaded only when asked for."""

    train: Split
    validation: Split | None = None
    test: Callable[[], Split] | None = None


class Loop:
    """Trains ``engine`` by ``config`` (resolved: no setting left to the recipe)."""

    def __init__(
        self,
        engine: Engine,
        config: ResolvedConfig,
        data: LoopData,
        state: RunState | None = None,
        callbacks: Sequence[Callback] = (),
        *,
        owner: Any = None,
        after_epoch: Callable[[], object] | None = None,
    ):
        self.engine, self.config, self.data = engine, config, data
        self.state = state if state is not None else RunState()
        self.callbacks = list(callbacks)
        self.owner = self if owner is None else owner
        self.after_epoch = after_epoch  # e.g. write a checkpoint
        self.augment = as_augment(config.augment)
        self.batches = epoch_steps(len(data.train), config.batch_size, config.steps_per_epoch)

    # -- the whole run -----------------------------------------------------------------------
    def fit(self) -> History:
        """Train from the state's next epoch to ``config.epochs``."""
        state, config = self.state, self.config
        keep_freed_memory()
        if not self.augment.active:
            self.attach()
        if config.ema and state.weight_average is None:
            state.weight_average = WeightAverage(config.ema, self.engine.get_params())
        state.stop_training = False
        self._each("on_train_begin")
        for epoch in range(state.epochs_done, config.epochs):
            self._each("on_epoch_begin", epoch)
            record = self.run_epoch(epoch)
            if self.data.validation is not None:
                result = self.evaluate(self.data.validation)
                record.val_loss, record.val_accuracy = result.loss, result.accuracy
            if config.evaluate_each_epoch and self.data.test is not None:
                result = self.evaluate(self.data.test())
                record.test_loss, record.test_accuracy = result.loss, result.accuracy
            state.history.epochs.append(record)
            state.epochs_done = epoch + 1
            if self.after_epoch is not None:
                self.after_epoch()
            self._each("on_epoch_end", record)
            if state.stop_training:
                break
        self._each("on_train_end", state.history)
        return state.history

    def _each(self, method: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, method)(self.owner, *args)

    # -- steps -------------------------------------------------------------------------------
    def attach(self) -> None:
        """The engine holds the whole training split (once)."""
        if not self.state.attached:
            self.engine.attach(self.data.train.images, self.data.train.labels)
            self.state.attached = True

    def step_scalars(self, epoch: int, first_step: int, steps: int) -> np.ndarray:
        """The optimizer's per-step scalars (steps, columns) from step ``first_step`` of
        ``epoch``."""
        config = self.config
        at = epoch * self.batches + first_step + np.arange(steps)
        rates = config.schedule.rates(
            config.learning_rate, at, self.batches, self.batches * config.epochs
        )
        return config.optimizer.step_scalars(rates, at + 1)

    def run_steps(self, steps: int) -> StepResult:
        """The first ``steps`` steps of the next epoch's seeded order, in one engine call, on the
        images as they are: what the conformance and parity suites and ``fmnist compare``
        compare across backends."""
        epoch, size = self.state.epochs_done, self.config.batch_size
        order = epoch_permutation(self.config.seed, epoch, len(self.data.train))
        self.attach()
        return self.engine.train_steps(
            order[: steps * size].reshape(steps, size), self.step_scalars(epoch, 0, steps)
        )

    def run_epoch(self, epoch: int) -> EpochRecord:
        """One epoch in blocks of ``steps_per_execution`` steps (at most ``WeightAverage.every``
        with ``ema``); with augmentation, each block's images augmented and attached. A
        non-finite loss puts the weights, optimizer state and average back to where the epoch
        began and raises ``TrainingError``."""
        config, engine, train, state = self.config, self.engine, self.data.train, self.state
        order = epoch_permutation(config.seed, epoch, len(train))
        snapshot = engine.get_params()
        optimizer_snapshot = engine.optimizer_state()
        average = state.weight_average
        average_snapshot = average.state() if average is not None else None
        augment = self.augment
        draws = augment.draws(config.seed, epoch, len(train), order) if augment.active else None
        order = order[: self.batches * config.batch_size]  # steps_per_epoch: the first batches
        block_steps = min(config.steps_per_execution, average.every if average else 1 << 30)
        lookahead = config.lookahead_steps
        block_steps = min(block_steps, lookahead or block_steps)
        slow, since_sync = snapshot, 0
        loss_sum, correct, items, steps = 0.0, 0, 0, 0
        started = time.perf_counter()
        for block in epoch_blocks(order, config.batch_size, block_steps):
            scalars = self.step_scalars(epoch, steps, len(block))
            if draws is None:
                result = engine.train_steps(block, scalars)
            else:
                flat = block.reshape(-1)
                engine.attach(draws.apply(train.images[flat], items), train.labels[flat])
                state.attached = False
                index = np.arange(flat.size, dtype=np.int64).reshape(block.shape)
                result = engine.train_steps(index, scalars)
            losses = np.asarray(result.losses, np.float64)
            if not np.all(np.isfinite(losses)):
                bad = steps + int(np.argmin(np.isfinite(losses))) + 1
                engine.set_params(snapshot)
                if optimizer_snapshot:
                    engine.set_optimizer_state(optimizer_snapshot)
                if average is not None and average_snapshot is not None:
                    average.load(average_snapshot)
                raise TrainingError(
                    f"the loss became {losses[bad - steps - 1]} at epoch {epoch + 1}, "
                    f"batch {bad}; the weights are back to where epoch {epoch + 1} began",
                    fix=f"lower the learning rate (now {config.learning_rate})",
                )
            since_sync += len(block)
            if lookahead and (since_sync >= lookahead or steps + len(block) == self.batches):
                slow, since_sync = self._lookahead(slow), 0
            if average is not None:
                average.update(engine.get_params(), len(block))
            hits = np.asarray(result.correct)
            for row in range(len(block)):  # progress at every log_every-th batch, and at the end
                loss_sum += losses[row] * block.shape[1]
                correct += int(hits[row])
                items += block.shape[1]
                steps += 1
                if steps % config.log_every == 0 or steps == self.batches:
                    progress = ProgressRecord(
                        epoch, steps, items, loss_sum / items, correct / items, float(losses[row])
                    )
                    state.history.progress.append(progress)
                    self._each("on_progress", progress, self.batches)
        seconds = time.perf_counter() - started
        return EpochRecord(epoch, loss_sum / items, correct / items, seconds, steps, items)

    def _lookahead(self, slow: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Lookahead (Zhang et al. 2019, as airbench uses it): the slow weights step
        ``lookahead_alpha`` of the way to the fast ones; training continues from them."""
        alpha = np.float32(self.config.lookahead_alpha)
        fast = self.engine.get_params()
        moved = {name: slow[name] + alpha * (fast[name] - slow[name]) for name in fast}
        self.engine.set_params(moved)
        return moved

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, split: Split, tta: bool | None = None) -> EvalResult:
        """Loss, accuracy and confusion matrix of the evaluated weights on ``split``."""
        return EvalResult.from_logits(self.logits(split.images, tta), split.labels)

    def logits(self, images: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Logits of the evaluated weights (``tta``: averaged with the mirror images')."""
        return evaluated_logits(
            self.engine,
            self.state.weight_average,
            images,
            self.config.tta if tta is None else tta,
        )


def evaluated_logits(
    engine: Engine, average: WeightAverage | None, images: np.ndarray, tta: bool
) -> np.ndarray:
    """Logits of the weights that are evaluated and saved (the average, with ``ema``)."""
    with evaluated_weights(engine, average):
        return chunked_logits(engine.logits, images, tta)


@contextlib.contextmanager
def evaluated_weights(engine: Engine, average: WeightAverage | None) -> Iterator[None]:
    """Inside the block the engine holds the evaluated weights: the average when training with
    ``ema``, else the weights themselves."""
    if average is None:
        yield
        return
    training = engine.get_params()
    engine.set_params(average.params())
    try:
        yield
    finally:
        engine.set_params(training)
