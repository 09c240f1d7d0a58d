"""The validation split: stratified, fixed, carved out of the training set, reported each epoch."""

import numpy as np
import pytest

from fmnist_core import ConfigError, Trainer
from fmnist_core.data import validation_indices
from fmnist_core.testing import synthetic_dataset


def test_stratified_and_fixed():
    labels = np.repeat(np.arange(10), [600, 600, 600, 600, 600, 600, 600, 600, 600, 601]).astype(
        np.uint8
    )
    kept, held = validation_indices(labels, 500)
    assert len(held) == 500 and len(kept) == len(labels) - 500 and not set(kept) & set(held)
    assert np.bincount(labels[held]).tolist() == [50] * 10
    np.testing.assert_array_equal(held, validation_indices(labels, 500)[1])  # the same every time
    assert len(validation_indices(labels, 0.1)[1]) == 600


@pytest.mark.parametrize("size", [0, -3, 10**6, 1.5, "5000", True])
def test_bad_sizes(size):
    with pytest.raises(ConfigError, match="validation must be a count"):
        validation_indices(np.zeros(100, np.uint8), size)


def test_trainer_reports_validation_each_epoch_and_trains_on_the_rest():
    data = synthetic_dataset(train=640)
    trainer = Trainer(backend="numpy", data=data, epochs=2, batch_size=32, verbose=0, validation=64)
    history = trainer.fit()
    assert all(r.val_accuracy is not None and r.test_accuracy is None for r in history)
    assert history[0].items == 640 - 64 and history[0].steps == 18
    result = trainer.evaluate("validation")
    assert result.count == 64 and result.accuracy == history[-1].val_accuracy
    assert trainer.recorded()["validation"] == 64


def test_same_split_on_every_backend_and_seed():
    data = synthetic_dataset(train=640)
    a = Trainer(backend="numpy", data=data, seed=1, validation=0.1, verbose=0).splits()[1]
    b = Trainer(backend="numpy", data=data, seed=2, validation=0.1, verbose=0).splits()[1]
    np.testing.assert_array_equal(a.images, b.images)


def test_no_validation_split_asked():
    with pytest.raises(ConfigError, match="no validation split"):
        Trainer(backend="numpy", data=synthetic_dataset(), verbose=0).evaluate("validation")
