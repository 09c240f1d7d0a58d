"""The conformance suite every backend plugin runs against itself with pytest.

    from fmnist_core.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mine"
        options = {}          # backend options passed to Trainer

It uses a small synthetic dataset, so it needs no real data and runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from ..data import Dataset, Split
from ..errors import ConfigError, TrainingError, WeightsError
from ..plugins import backends, get_model, weight_formats
from ..trainer import Trainer
from ..weights import read_weights


def synthetic_dataset(train: int = 640, test: int = 160, seed: int = 0) -> Dataset:
    """Learnable fake Fashion-MNIST: each class is a noisy bright template on black."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, 28, 28)) * (rng.random((10, 28, 28)) < 0.3)

    def split(n):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        noise = rng.integers(0, 60, size=(n, 28, 28))
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return Split(images, labels)

    return Dataset(split(train), split(test), source="synthetic")


class BackendConformance:
    """Subclass with ``backend = "<name>"`` (and ``options``) to check a backend."""

    backend: str = ""
    options: dict = {}
    #: relative tolerance against the NumPy reference for one step from identical weights
    reference_rtol: float = 1e-5

    @pytest.fixture(scope="class")
    @classmethod
    def dataset(cls) -> Dataset:
        return synthetic_dataset()

    def trainer(self, dataset, **kwargs) -> Trainer:
        settings = {"epochs": 2, "batch_size": 32, "seed": 0, "verbose": 0, **self.options, **kwargs}
        return Trainer(backend=self.backend, data=dataset, **settings)

    def test_registered_and_available(self):
        registered = backends()
        assert self.backend in registered, f"{self.backend!r} not among {sorted(registered)}"
        assert registered[self.backend].unavailable_reason() is None

    def test_starts_from_core_initial_params(self, dataset):
        expected = get_model("mlp").init_params(7)
        params = self.trainer(dataset, seed=7).params
        assert set(params) == set(expected)
        for name in expected:
            np.testing.assert_array_equal(params[name], expected[name], err_msg=name)

    def test_framework_initialiser_gives_valid_params(self, dataset):
        params = self.trainer(dataset, init="framework").params
        shapes = get_model("mlp").shapes()
        assert {k: v.shape for k, v in params.items()} == shapes
        assert np.abs(params["fc1.weight"]).max() > 0

    def test_train_steps_shapes(self, dataset):
        engine = self.trainer(dataset).engine
        engine.attach(dataset.train.images, dataset.train.labels)
        result = engine.train_steps(np.arange(96, dtype=np.int64).reshape(3, 32))
        assert np.asarray(result.losses).shape == (3,)
        assert np.asarray(result.correct).shape == (3,)
        assert np.all(np.isfinite(result.losses))
        assert np.all((np.asarray(result.correct) >= 0) & (np.asarray(result.correct) <= 32))

    def test_steps_lower_loss_on_fixed_batch(self, dataset):
        engine = self.trainer(dataset).engine
        engine.attach(dataset.train.images, dataset.train.labels)
        batch = np.tile(np.arange(32, dtype=np.int64), (20, 1))
        losses = np.asarray(engine.train_steps(batch).losses)
        assert losses[-1] < 0.5 * losses[0], losses

    def test_one_step_matches_numpy_reference(self, dataset):
        index = np.arange(64, dtype=np.int64).reshape(2, 32)
        results = {}
        for name in (self.backend, "numpy"):
            opts = self.options if name == self.backend else {}
            trainer = Trainer(backend=name, data=dataset, batch_size=32, verbose=0, seed=3, **opts)
            trainer.engine.attach(dataset.train.images, dataset.train.labels)
            results[name] = (trainer.engine.train_steps(index), trainer.params)
        (mine, my_params), (ref, ref_params) = results[self.backend], results["numpy"]
        np.testing.assert_allclose(mine.losses, ref.losses, rtol=self.reference_rtol)
        np.testing.assert_array_equal(mine.correct, ref.correct)
        for name in ref_params:
            np.testing.assert_allclose(my_params[name], ref_params[name], rtol=1e-4, atol=1e-6, err_msg=name)

    def test_same_seed_same_result(self, dataset):
        first = self.trainer(dataset)
        second = self.trainer(dataset)
        assert first.fit().metrics() == second.fit().metrics()
        for name, value in first.params.items():
            np.testing.assert_array_equal(value, second.params[name], err_msg=name)

    def test_fit_learns(self, dataset):
        trainer = self.trainer(dataset, epochs=3)
        history = trainer.fit()
        assert len(history) == 3 and history[-1].loss < history[0].loss
        assert trainer.evaluate().accuracy > 0.5

    def test_predict_is_argmax_of_logits(self, dataset):
        trainer = self.trainer(dataset)
        images = dataset.test.images[:50]
        logits = trainer.logits(images)
        assert logits.shape == (50, 10) and logits.dtype == np.float32
        assert trainer.predict(images, output="indices") == [int(i) for i in logits.argmax(1)]
        probs = np.array(trainer.predict(images, output="probabilities"))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)

    def test_save_load_roundtrip_every_format(self, dataset, tmp_path):
        trainer = self.trainer(dataset, epochs=1)
        trainer.fit()
        expected = trainer.logits(dataset.test.images)
        for fmt in weight_formats().values():
            if fmt.write is None or fmt.read is None:
                continue
            path = tmp_path / f"model-{fmt.name}{fmt.suffixes[0]}"
            trainer.save(path, format=fmt.name)
            assert read_weights(path).model == "mlp"
            loaded = Trainer.load(path, backend=self.backend, verbose=0, data=dataset, **self.options)
            got = loaded.logits(dataset.test.images)
            np.testing.assert_array_equal(got.argmax(1), expected.argmax(1), err_msg=fmt.name)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=fmt.name)

    def test_resume_equals_uninterrupted(self, dataset, tmp_path):
        full = self.trainer(dataset, epochs=4)
        full.fit()
        part = self.trainer(dataset, epochs=2)
        part.fit(checkpoint_dir=tmp_path)
        resumed = Trainer.resume(tmp_path, data=dataset, verbose=0)
        assert resumed.backend.name == self.backend
        assert resumed.fit(epochs=4).metrics() == full.history.metrics()
        for name, value in full.params.items():
            np.testing.assert_array_equal(resumed.params[name], value, err_msg=name)

    def test_wrong_shape_weights_rejected(self, dataset):
        trainer = self.trainer(dataset)
        params = trainer.params
        params["fc1.weight"] = np.zeros((784, 32), np.float32)
        with pytest.raises(WeightsError, match="fc1.weight"):
            trainer.set_params(params)

    def test_bad_images_rejected(self, dataset):
        trainer = self.trainer(dataset)
        with pytest.raises(ConfigError, match="28, 28"):
            trainer.logits(np.zeros((2, 32, 32), np.uint8))

    def test_nan_loss_stops_and_keeps_weights(self, dataset):
        trainer = self.trainer(dataset, learning_rate=1e30, epochs=1)
        before = trainer.params
        with pytest.raises(TrainingError, match="lower the learning rate"):
            trainer.fit()
        for name, value in trainer.params.items():
            np.testing.assert_array_equal(value, before[name], err_msg=name)


class RealDataAcceptance:
    """The article's recipe on the real data, for a backend: subclass with ``backend``/``options``.

    Trains 5 epochs from seed 0 (test accuracy ≥ 0.80), seeds 1-4 (mean ≥ 0.83), checks that
    the same seed gives the same history and that the framework's own initialiser also trains.
    The data is found as ``Trainer`` finds it (the Debian package's folder on CI).
    """

    backend: str = ""
    options: dict = {}

    @pytest.fixture(scope="class")
    @classmethod
    def real(cls) -> Dataset:
        from ..data import load_dataset

        return load_dataset()

    @pytest.fixture(scope="class")
    @classmethod
    def trained(cls, real) -> Trainer:
        trainer = Trainer(backend=cls.backend, seed=0, verbose=0, data=real, **cls.options)
        trainer.fit()
        return trainer

    def test_article_recipe_accuracy(self, trained):
        assert trained.evaluate().accuracy >= 0.80

    def test_mean_over_seeds(self, trained, real):
        accuracies = [trained.evaluate().accuracy]
        for seed in range(1, 5):
            trainer = Trainer(backend=self.backend, seed=seed, verbose=0, data=real, **self.options)
            trainer.fit()
            accuracies.append(trainer.evaluate().accuracy)
        print(f"{self.backend} {self.options} accuracies over seeds 0-4:", accuracies)
        assert np.mean(accuracies) >= 0.83

    def test_same_seed_identical_history(self, trained, real):
        again = Trainer(backend=self.backend, seed=0, verbose=0, data=real, **self.options)
        again.fit()
        assert again.history.metrics() == trained.history.metrics()

    def test_framework_initialiser_trains(self, real):
        trainer = Trainer(backend=self.backend, seed=0, verbose=0, data=real, init="framework", epochs=1,
                          **self.options)
        trainer.fit()
        assert trainer.evaluate().accuracy >= 0.75
