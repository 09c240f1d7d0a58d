"""Which samples each step sees: a seeded permutation per epoch, cut into batches by index,
and each data-parallel worker's shard of a batch.

The order depends only on (seed, epoch), so a resumed run sees the same batches as an
uninterrupted one and every backend sees the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def epoch_permutation(seed: int, epoch: int, size: int) -> np.ndarray:
    """The sample order of ``epoch`` (0-based) for ``seed``: a permutation of ``range(size)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x5EED]))
    return rng.permutation(size).astype(np.int64)


def batch_count(size: int, batch_size: int) -> int:
    """Batches per epoch, the last one possibly smaller."""
    return -(-size // batch_size)


def epoch_steps(size: int, batch_size: int, limit: int | None = None) -> int:
    """Steps of an epoch of ``size`` samples: every batch, or the first ``limit`` of them
    (``TrainConfig.steps_per_epoch``; None: no limit)."""
    count = batch_count(size, batch_size)
    return min(count, limit) if limit else count


def epoch_blocks(
    order: np.ndarray, batch_size: int, steps_per_execution: int
) -> Iterator[np.ndarray]:
    """Yield the rectangular ``(k, batch_size)`` index blocks of one epoch,
    ``k ≤ steps_per_execution``.

    A smaller last batch comes as its own block of one row, so that every block is rectangular.
    """
    full = len(order) // batch_size
    blocks = order[: full * batch_size].reshape(full, batch_size)
    for start in range(0, full, steps_per_execution):
        yield blocks[start : start + steps_per_execution]
    rest = order[full * batch_size :]
    if len(rest):
        yield rest.reshape(1, -1)


def pad_block(
    batches: np.ndarray, scalars: np.ndarray, largest: list[int]
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """For compiled backends: pad a block to the largest ``(steps, batch_size)`` seen so far.

    XLA compiles one program per input shape (about half a second each here), so a shorter
    block gets copies of its last row (and of its last row of optimizer ``scalars``) and a
    smaller last batch copies of its first index; the real step count and batch size are passed
    along with it. The padding steps are never run and the padding samples must be masked out of
    the loss and accuracy. ``largest`` is the backend's ``[steps, batch_size]`` memory (start
    with ``[0, 0]``). Returns ``(padded batches, padded float32 scalars, steps, batch_size)``.
    """
    steps, batch = batches.shape
    scalars = np.asarray(scalars, np.float32)
    largest[0], largest[1] = max(steps, largest[0]), max(batch, largest[1])
    if batch < largest[1]:
        batches = np.concatenate(
            [batches, np.repeat(batches[:, :1], largest[1] - batch, axis=1)], axis=1
        )
    if steps < largest[0]:
        batches = np.concatenate([batches, np.repeat(batches[-1:], largest[0] - steps, axis=0)])
        scalars = np.concatenate([scalars, np.repeat(scalars[-1:], largest[0] - steps, axis=0)])
    return batches, scalars, steps, batch


def shard(batch_size: int, rank: int, world_size: int) -> slice:
    """The columns of a global batch that ``rank`` trains on: ``world_size`` near-equal contiguous
    shards (the first ``batch_size % world_size`` one sample larger). Each worker divides its
    summed loss by the *global* batch size and the gradients are summed across workers, so a step
    of N workers is exactly a step of one process on the whole batch, short last batch included."""
    base, extra = divmod(batch_size, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))
