import json
import os

import numpy as np
import pytest

from fmnist_core import Trainer, WeightsError, read_weights
from fmnist_core.atomic import atomic_write_bytes
from fmnist_core.testing import synthetic_dataset


@pytest.fixture
def trained(tmp_path):
    trainer = Trainer(backend="numpy", data=synthetic_dataset(), epochs=1, verbose=0)
    trainer.fit()
    return trainer


def test_neutral_file_layout_and_metadata(trained, tmp_path):
    path = trained.save(tmp_path / "w.safetensors")
    weights = read_weights(path)
    assert weights.model == "mlp"
    assert {k: v.shape for k, v in weights.params.items()} == {
        "fc1.weight": (784, 20),
        "fc1.bias": (20,),
        "fc2.weight": (20, 10),
        "fc2.bias": (10,),
    }
    meta = weights.metadata
    assert meta["backend"] == "numpy" and meta["fmnist_format"] == "1"
    assert json.loads(meta["labels"])[9] == "Ankle Boot"
    assert "fmnist-core" in json.loads(meta["versions"])
    assert json.loads(meta["config"])["learning_rate"] == 0.1


def test_load_restores_predictions(trained, tmp_path):
    path = trained.save(tmp_path / "w.safetensors")
    loaded = Trainer.load(path, verbose=0)
    images = synthetic_dataset().test.images
    np.testing.assert_array_equal(loaded.logits(images), trained.logits(images))


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    with pytest.raises(WeightsError, match="not a safetensors weights file") as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_missing_and_unknown_format(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        read_weights(tmp_path / "nope.safetensors")
    (tmp_path / "w.xyz").write_bytes(b"x")
    with pytest.raises(
        WeightsError, match="no installed plugin understands .*known formats: .*safetensors"
    ):
        read_weights(tmp_path / "w.xyz")


def test_weights_of_another_shape(trained, tmp_path):
    from fmnist_core.io.formats import write_weights
    from fmnist_core.io.weights import Weights

    params = trained.params
    params["fc1.weight"] = np.zeros((784, 64), np.float32)
    write_weights(tmp_path / "big.safetensors", Weights("mlp", params))
    with pytest.raises(WeightsError, match=r"fc1.weight has shape \(784, 64\)"):
        Trainer.load(tmp_path / "big.safetensors")
    del params["fc2.bias"]
    write_weights(tmp_path / "less.safetensors", Weights("mlp", params))
    with pytest.raises(WeightsError, match="missing fc2.bias"):
        Trainer.load(tmp_path / "less.safetensors")


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    from fmnist_core import atomic

    with pytest.raises(RuntimeError):
        with atomic.atomic_writer(path) as handle:
            handle.write(b"partial")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_loaded_weights_train_further(trained, tmp_path):
    path = trained.save(tmp_path / "w.safetensors")
    loaded = Trainer.load(path, verbose=0, data=synthetic_dataset(), epochs=1)
    before = loaded.params
    assert len(loaded.fit()) == 1
    assert not np.array_equal(loaded.params["fc1.weight"], before["fc1.weight"])


def test_predict_single_array_image(trained):
    image = synthetic_dataset().test.images[0]
    predictions = trained.predict(image, output="predictions")
    assert len(predictions) == 1 and predictions[0].path == "<array 0>"
