"""``RealDataAcceptance``: the article's recipe on the real data, for a backend."""

from __future__ import annotations

import pytest

from ..data import Dataset
from ..training.trainer import Trainer


class RealDataAcceptance:
    """The article's recipe on the real data, for a backend: subclass with ``backend``/``options``.

    Trains 5 epochs from seed 0 (test accuracy ≥ 0.80), checks that the same seed gives the
    same history and that the framework's own initialiser also trains. The data is found as
    ``Trainer`` finds it (the Debian package's folder on CI). The mean over five seeds is the
    NumPy reference backend's test (tests/core): every backend takes its steps (the conformance
    suite), and ``nox -s speedrun`` measures recipes over five seeds on a backend.
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

    def test_same_seed_identical_history(self, trained, real):
        again = Trainer(backend=self.backend, seed=0, verbose=0, data=real, **self.options)
        again.fit()
        assert again.history.metrics() == trained.history.metrics()

    def test_framework_initialiser_trains(self, real):
        trainer = Trainer(
            backend=self.backend,
            seed=0,
            verbose=0,
            data=real,
            init="framework",
            epochs=1,
            **self.options,
        )
        trainer.fit()
        assert trainer.evaluate().accuracy >= 0.75
