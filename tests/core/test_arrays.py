"""Training and evaluating on your own arrays: Keras' fit(x, y), with the core's batching,
seeding and checks."""

import numpy as np
import pytest

from fmnist_core import ConfigError, Dataset, Split, Trainer
from fmnist_core.testing import synthetic_dataset


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(train=640, test=160)


def test_fit_on_arrays_is_fit_on_that_data(data):
    x, y = data.train.images, data.train.labels
    mine = Trainer(
        backend="numpy", epochs=2, verbose=0, batch_size=32, data=synthetic_dataset(seed=9)
    )
    mine.fit(x, y)
    same = Trainer(backend="numpy", epochs=2, verbose=0, batch_size=32, data=data)
    same.fit()
    assert mine.history.metrics() == same.history.metrics()
    mine_result, same_result = mine.evaluate(data.test.images, data.test.labels), same.evaluate()
    assert (mine_result.loss, mine_result.accuracy) == (same_result.loss, same_result.accuracy)
    assert (
        mine.recorded()["data"] == {"arrays": mine.run_data.arrays_digest}
        and len(mine.run_data.arrays_digest) == 16
    )


def test_flat_and_float_images_are_the_same_images(data):
    x, y = data.train.images, data.train.labels
    runs = []
    for images, labels in [
        (x, y),
        (x.reshape(len(x), 784), y.astype(np.int64)),
        (x.astype(np.float32) / 255, y.tolist()),
    ]:
        trainer = Trainer(backend="numpy", epochs=1, verbose=0, batch_size=32, data=data)
        trainer.fit(images, labels)
        runs.append(trainer.history.metrics())
    assert runs[0] == runs[1] == runs[2]


def test_validation_data_is_reported_each_epoch(data):
    trainer = Trainer(backend="numpy", epochs=2, verbose=0, batch_size=32, data=data)
    history = trainer.fit(
        data.train.images, data.train.labels, validation_data=(data.test.images, data.test.labels)
    )
    assert all(record.val_accuracy is not None for record in history)
    assert history[-1].val_accuracy == trainer.evaluate("validation").accuracy


@pytest.mark.parametrize(
    "x, y, message",
    [
        (
            np.zeros((4, 32, 32), np.uint8),
            [0] * 4,
            r"shape \(n, 28, 28\) or \(n, 784\), got \(4, 32, 32\)",
        ),
        (np.zeros((4, 28, 28), np.uint8), [0] * 3, "4 images need 4 labels"),
        (np.zeros((4, 28, 28), np.uint8), [0, 1, 2, 12], r"labels must lie in 0..9, found 0..12"),
        (np.zeros((4, 28, 28), np.uint8), [0.5] * 4, "labels must be integers"),
        (np.full((4, 28, 28), 2.0), [0] * 4, r"must lie in \[0, 1\], found 2..2"),
        (np.full((4, 28, 28), 300), [0] * 4, "integer pixels must lie in 0..255"),
        (np.full((4, 28, 28), np.nan), [0] * 4, "NaN"),
        (np.array([["a"] * 784] * 4), [0] * 4, "must be uint8 or floating point"),
        (np.zeros((4, 784), "timedelta64[s]"), [0] * 4, "got timedelta64"),
        (np.zeros((4, 784), complex), [0] * 4, "got complex128"),
        (np.zeros((4, 784), np.uint8), np.zeros(4, complex), "got complex128 values"),
        (np.zeros((4, 784), np.uint8), [0, np.nan, 1, 2], "non-integer floats"),
        (np.zeros((4, 784), np.uint8), np.array([1, "a", None, 2], object), "got object values"),
        (np.zeros((4, 784), np.uint8), [[1], [1, 2], 3, 4], "not an array of labels"),
        (np.zeros((0, 784), np.uint8), [], "no images"),
    ],
)
def test_bad_arrays_are_one_clear_error(data, x, y, message):
    trainer = Trainer(backend="numpy", epochs=1, verbose=0, data=data)
    with pytest.raises(ConfigError, match=message):
        trainer.fit(x, y)
    with pytest.raises(ConfigError, match=message):
        trainer.evaluate(x, y)


def test_resume_on_arrays_needs_the_same_arrays(data, tmp_path):
    x, y = data.train.images, data.train.labels
    full = Trainer(backend="numpy", epochs=3, verbose=0, batch_size=32, data=data)
    full.fit(x, y)

    part = Trainer(backend="numpy", epochs=3, verbose=0, batch_size=32, data=data)
    part.fit(x, y, epochs=1, checkpoint_dir=tmp_path)
    resumed = Trainer.resume(tmp_path, verbose=0, data=data)
    with pytest.raises(ConfigError, match="trained on arrays, which a checkpoint does not hold"):
        resumed.fit(epochs=3)
    with pytest.raises(ConfigError, match="not the ones this run was trained on"):
        resumed.fit(x[::-1].copy(), y[::-1].copy(), epochs=3)
    assert resumed.fit(x, y, epochs=3).metrics() == full.history.metrics()


def test_a_dataset_of_your_own_still_works(data):
    own = Dataset(Split(data.train.images[:320], data.train.labels[:320]), data.test)
    trainer = Trainer(backend="numpy", epochs=1, verbose=0, data=own)
    assert len(trainer.fit()) == 1


@pytest.mark.parametrize(
    "images, message",
    [
        (np.array(5.0), r"got \(\)"),
        (np.array(None, object), r"got \(\)"),
        (np.zeros((3, 784), complex), "got complex128"),
        (np.full((3, 784), np.inf, np.float32), "NaN or infinite"),
    ],
)
def test_predict_checks_arrays_as_fit_does(data, images, message):
    trainer = Trainer(backend="numpy", epochs=1, verbose=0, data=data)
    with pytest.raises(ConfigError, match=message):
        trainer.predict(images)


def test_predict_takes_flat_rows_as_images(data):
    trainer = Trainer(backend="numpy", epochs=1, verbose=0, data=data)
    images = data.test.images[:5]
    assert trainer.predict(images.reshape(5, 784)) == trainer.predict(images)
    assert trainer.predict(images[0]) == trainer.predict(images[:1])
    assert trainer.predict(images.reshape(5, 784)[:0]) == []


def test_a_large_float_memmap_costs_its_uint8_copy_not_twice_its_size(tmp_path):
    """200 MB of float32 images (a memmap): converted a chunk at a time, so the memory NumPy
    allocates peaks near the 50 MB uint8 copy, where converting whole cost twice the input
    (400 MB) in temporaries."""
    import tracemalloc

    from fmnist_core.data.arrays import as_images

    rows = 200 * 2**20 // (784 * 4)
    np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float32, (rows, 784))[:] = 0.5
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    tracemalloc.start()
    try:
        images = as_images(x)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert images.shape == (rows, 28, 28) and images[0, 0, 0] == 128
    assert peak < 100, f"{peak:.0f} MB allocated to convert 200 MB of float32 images"
