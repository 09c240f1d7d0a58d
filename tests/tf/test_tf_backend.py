import numpy as np
import pytest
import tensorflow as tf

from fmnist_core import Trainer, WeightsError, read_weights
from fmnist_core.testing import BackendConformance, RealDataAcceptance


class TestTFConformance(BackendConformance):
    backend = "tf"


class TestTFNoXLAConformance(BackendConformance):
    backend = "tf"
    options = {"jit_compile": False}
    numbers_only = True  # the default options' class checks the rest


class TestTFOnRealData(RealDataAcceptance):
    backend = "tf"

    def test_article_savedmodel_evaluates_as_its_weights(self, real, artifacts):
        path = artifacts / "tf-savedmodel"
        reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
        w = {
            n: reader.get_tensor(f"{n}/.ATTRIBUTES/VARIABLE_VALUE")
            for n in ("w1", "b1", "w2", "b2")
        }
        x = real.test.images.reshape(-1, 784).astype(np.float32) / np.float32(255)
        logits = np.maximum(x @ w["w1"] + w["b1"], 0) @ w["w2"] + w["b2"]
        expected = (logits.argmax(1) == real.test.labels).mean()
        loaded = Trainer.load(path, backend="tf", verbose=0, data=real)
        assert loaded.evaluate().accuracy == pytest.approx(expected, abs=2e-4)
        assert loaded.predict(artifacts / "predict-image.png") == ["Ankle Boot"]

    def test_exported_savedmodel_serves_same_predictions(self, trained, real, tmp_path):
        path = trained.save(tmp_path / "export", format="savedmodel")
        served = tf.saved_model.load(str(path))
        out = served.signatures["serving_default"](images=tf.constant(real.test.images[:500]))
        np.testing.assert_array_equal(
            out["class_index"].numpy(), trained.logits(real.test.images[:500]).argmax(1)
        )
        np.testing.assert_allclose(
            out["logits"].numpy(), trained.logits(real.test.images[:500]), rtol=1e-5, atol=1e-5
        )

    def test_checkpoint_files(self, trained, tmp_path):
        trained.save(tmp_path / "model.ckpt")
        assert (tmp_path / "model.ckpt.index").is_file()
        weights = read_weights(tmp_path / "model.ckpt")
        np.testing.assert_array_equal(weights.params["fc1.weight"], trained.params["fc1.weight"])


def test_foreign_checkpoint_rejected(tmp_path):
    tf.train.Checkpoint(v=tf.Variable([1.0])).write(str(tmp_path / "other.ckpt"))
    with pytest.raises(WeightsError, match="holds variables v, which fit no known model"):
        read_weights(tmp_path / "other.ckpt")
