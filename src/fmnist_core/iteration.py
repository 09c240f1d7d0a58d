"""Which samples each step sees: a seeded permutation per epoch, cut into batches by index.

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


def report_groups(order: np.ndarray, batch_size: int, every: int) -> Iterator[list[np.ndarray]]:
    """Yield, per progress report, the rectangular ``(k, batch_size)`` index blocks to train on.

    Reports fall every ``every`` batches and after the last batch; a smaller last batch comes
    as its own block of one row, so that every block is rectangular.
    """
    full = len(order) // batch_size
    blocks = order[: full * batch_size].reshape(full, batch_size)
    rest = order[full * batch_size :]
    starts = list(range(0, full, every)) or [0]
    for number, start in enumerate(starts):
        group = [blocks[start : start + every]] if full else []
        if number == len(starts) - 1 and len(rest):
            group.append(rest.reshape(1, -1))
        yield group


def pad_block(batches: np.ndarray, rows_seen: dict[int, int]) -> tuple[np.ndarray, int]:
    """For compiled backends: pad a block to the most rows seen for its batch size.

    XLA compiles one program per input shape (about half a second each here), so blocks of
    different lengths are padded with copies of their last row and the real step count is
    passed along; the padding rows are never run. Returns ``(padded, steps)``.
    """
    steps, batch = batches.shape
    rows = rows_seen[batch] = max(steps, rows_seen.get(batch, 0))
    if rows > steps:
        batches = np.concatenate([batches, np.repeat(batches[-1:], rows - steps, axis=0)])
    return batches, steps
