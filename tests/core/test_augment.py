"""The core's augmentation: per-sample draws from (seed, epoch), exact pixel moves, parsing."""

import numpy as np
import pytest

from fmnist_core import ConfigError
from fmnist_core.data.augment import Augment, as_augment, flipped


def images(n=64, seed=0):
    return np.random.default_rng(seed).integers(1, 256, size=(n, 28, 28)).astype(np.uint8)


def test_draws_depend_only_on_seed_epoch_and_place():
    augment = Augment(flip=True, translate=2, erase=0.5)
    first, again = augment.draws(3, 1, 100), augment.draws(3, 1, 100)
    assert np.array_equal(first.flips, again.flips) and np.array_equal(first.boxes, again.boxes)
    assert not np.array_equal(first.shifts, augment.draws(3, 2, 100).shifts)
    batch = images(100)
    whole = first.apply(batch, 0)
    in_parts = np.concatenate([first.apply(batch[:37], 0), first.apply(batch[37:], 37)])
    assert np.array_equal(whole, in_parts)  # blocks of any size give the same images


def test_each_augmentation_moves_pixels_exactly():
    batch = images(200)
    flip = Augment(flip=True).draws(0, 0, 200)
    out = flip.apply(batch, 0)
    assert np.array_equal(out[flip.flips], batch[flip.flips][:, :, ::-1])
    assert np.array_equal(out[~flip.flips], batch[~flip.flips]) and 60 < flip.flips.sum() < 140
    shift = Augment(translate=3).draws(0, 0, 200)
    out = shift.apply(batch, 0)
    for i in range(20):
        dy, dx = shift.shifts[i]
        expected = np.zeros((28, 28), np.uint8)
        src = batch[i][max(0, -dy) : 28 - max(0, dy), max(0, -dx) : 28 - max(0, dx)]
        expected[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = (
            src
        )
        assert np.array_equal(out[i], expected), (i, dy, dx)
    assert np.abs(shift.shifts).max() == 3
    erase = Augment(erase=1.0).draws(0, 0, 200)
    out = erase.apply(batch, 0)
    zeros = (out == 0).sum(axis=(1, 2))  # the source images have no black pixel
    areas = erase.boxes[:, 2] * erase.boxes[:, 3]
    assert np.array_equal(zeros, areas) and areas.min() >= 1
    assert (areas <= 0.25 * 28 * 28 * 1.2).all()
    assert np.array_equal(flipped(flipped(batch)), batch)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("flip,translate:2,erase:0.5", Augment(True, 2, 0.5)),
        ("translate", Augment(translate=2)),
        ("none", Augment()),
        (None, Augment()),
        ({"flip": True}, Augment(flip=True)),
    ],
)
def test_parsing(text, expected):
    assert as_augment(text) == expected
    assert as_augment(str(expected)) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("wobble", "unknown augmentation 'wobble'"),
        ("translate:x", "'x' is not a number"),
        ("translate:20", "translate must be an integer in 0..8"),
        ("erase:2", "erase must be a probability"),
        (3, "augment must be a text"),
    ],
)
def test_bad_augmentation_is_one_clear_error(text, message):
    with pytest.raises(ConfigError, match=message):
        as_augment(text)


def test_alternating_flips_follow_each_image_across_epochs():
    from fmnist_core.engine.batching import epoch_permutation

    augment = as_augment("flip:alternate,translate:2")
    assert augment.alternate and str(augment) == "flip:alternate,translate:2"
    size, by_image = 1000, []
    for epoch in range(4):
        order = epoch_permutation(7, epoch, size)
        made = augment.draws(7, epoch, size, order)
        flipped_images = np.zeros(size, bool)
        flipped_images[order] = made.flips  # by image, not by place
        by_image.append(flipped_images)
        plain = Augment(flip=True, translate=2).draws(7, epoch, size)
        assert np.array_equal(made.shifts, plain.shifts)  # the other draws are the same
    assert 400 < by_image[0].sum() < 600
    assert all(np.array_equal(by_image[e], ~by_image[e + 1]) for e in range(3))
    with pytest.raises(ValueError, match="order"):
        augment.draws(7, 0, size)
    with pytest.raises(ConfigError, match="needs flip"):
        Augment(alternate=True)
