"""The training loop, written once for every backend: epochs, the seeded order, blocks of steps
handed to the engine, augmentation, the optimizer's per-step scalars, the average of the weights,
progress, callbacks, checkpoints, and what happens when the loss diverges."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from ..engine.batching import batch_count, epoch_blocks, epoch_permutation
from ..errors import TrainingError
from .callbacks import Callback
from .ema import WeightAverage
from .metrics import EpochRecord, History, ProgressRecord

if TYPE_CHECKING:
    from ..data.dataset import Split
    from ..engine.backend import Engine
    from .trainer import Trainer


def fit(
    trainer: Trainer, callbacks: list[Callback], checkpoint_dir: str | os.PathLike | None
) -> History:
    """Train ``trainer`` from its next epoch to ``trainer.epochs``; see ``Trainer.fit``."""
    train, validation = trainer.splits()
    # with augmentation each block's augmented images are attached in turn (train_epoch)
    engine = trainer.engine if trainer.augment.active else trainer.attached_engine()
    if trainer.ema and trainer.weight_average is None:
        trainer.weight_average = WeightAverage(trainer.ema, engine.get_params())
    trainer.stop_training = False
    batches = batch_count(len(train), trainer.batch_size)
    for cb in callbacks:
        cb.on_train_begin(trainer)
    for epoch in range(trainer.epochs_done, trainer.epochs):
        for cb in callbacks:
            cb.on_epoch_begin(trainer, epoch)
        record = train_epoch(trainer, engine, epoch, train, batches, callbacks)
        if validation is not None:
            result = trainer.evaluate("validation")
            record.val_loss, record.val_accuracy = result.loss, result.accuracy
        if trainer.evaluate_each_epoch:
            result = trainer.evaluate()
            record.test_loss, record.test_accuracy = result.loss, result.accuracy
        trainer.history.epochs.append(record)
        trainer.epochs_done = epoch + 1
        if checkpoint_dir is not None:
            trainer.save_checkpoint(checkpoint_dir)
        for cb in callbacks:
            cb.on_epoch_end(trainer, record)
        if trainer.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end(trainer, trainer.history)
    return trainer.history


def step_scalars(trainer: Trainer, epoch: int, first_step: int, steps: int) -> np.ndarray:
    """The optimizer's per-step scalars (steps, columns) from step ``first_step`` of ``epoch``."""
    per_epoch = batch_count(len(trainer.splits()[0]), trainer.batch_size)
    at = epoch * per_epoch + first_step + np.arange(steps)
    rates = trainer.schedule.rates(trainer.learning_rate, at, per_epoch, per_epoch * trainer.epochs)
    return trainer.optimizer.step_scalars(rates, at + 1)


def train_epoch(
    trainer: Trainer,
    engine: Engine,
    epoch: int,
    train: Split,
    batches: int,
    callbacks: list[Callback],
) -> EpochRecord:
    """One epoch in blocks of ``steps_per_execution`` steps (at most ``WeightAverage.every``
    with ``ema``); with augmentation, each block's images augmented and attached. A non-finite
    loss puts the weights, optimizer state and average back to where the epoch began and raises
    ``TrainingError``."""
    order = epoch_permutation(trainer.seed, epoch, len(train))
    snapshot = engine.get_params()
    optimizer_snapshot = engine.optimizer_state()
    average = trainer.weight_average
    average_snapshot = average.state() if average is not None else None
    draws = (
        trainer.augment.draws(trainer.seed, epoch, len(train)) if trainer.augment.active else None
    )
    block_steps = min(
        trainer.steps_per_execution, average.every if average else trainer.steps_per_execution
    )
    loss_sum, correct, items, steps = 0.0, 0, 0, 0
    started = time.perf_counter()
    for block in epoch_blocks(order, trainer.batch_size, block_steps):
        scalars = step_scalars(trainer, epoch, steps, len(block))
        if draws is None:
            result = engine.train_steps(block, scalars)
        else:
            flat = block.reshape(-1)
            engine.attach(draws.apply(train.images[flat], items), train.labels[flat])
            trainer.detached()
            result = engine.train_steps(
                np.arange(flat.size, dtype=np.int64).reshape(block.shape), scalars
            )
        losses = np.asarray(result.losses, np.float64)
        if not np.all(np.isfinite(losses)):
            bad = steps + int(np.argmin(np.isfinite(losses))) + 1
            engine.set_params(snapshot)
            if optimizer_snapshot:
                engine.set_optimizer_state(optimizer_snapshot)
            if average is not None:
                average.load(average_snapshot)
            raise TrainingError(
                f"the loss became {losses[bad - steps - 1]} at epoch {epoch + 1}, "
                f"batch {bad}; the weights are back to where epoch {epoch + 1} began",
                fix=f"lower the learning rate (now {trainer.learning_rate})",
            )
        if average is not None:
            average.update(engine.get_params(), len(block))
        hits = np.asarray(result.correct)
        for row in range(len(block)):  # progress at every log_every-th batch, and at the end
            loss_sum += losses[row] * block.shape[1]
            correct += int(hits[row])
            items += block.shape[1]
            steps += 1
            if steps % trainer.log_every == 0 or steps == batches:
                progress = ProgressRecord(
                    epoch, steps, items, loss_sum / items, correct / items, float(losses[row])
                )
                trainer.history.progress.append(progress)
                for cb in callbacks:
                    cb.on_progress(trainer, progress, batches)
    seconds = time.perf_counter() - started
    return EpochRecord(epoch, loss_sum / items, correct / items, seconds, steps, items)
