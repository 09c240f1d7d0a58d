"""The acceptance checks of the NumPy reference backend on the real data."""

import csv

import numpy as np
import pytest

from fmnist_core import LABELS, Trainer
from fmnist_core.testing import RealDataAcceptance


class TestNumpyOnRealData(RealDataAcceptance):
    backend = "numpy"

    def test_mean_over_seeds(self, trained, real):
        """Seeds 0-4 of the article's recipe: a mean test accuracy ≥ 0.83 (here only: every
        other backend takes these steps, as its conformance suite holds)."""
        accuracies = [trained.evaluate().accuracy]
        for seed in range(1, 5):
            trainer = Trainer(backend=self.backend, seed=seed, verbose=0, data=real)
            trainer.fit()
            accuracies.append(trainer.evaluate().accuracy)
        print(f"{self.backend} accuracies over seeds 0-4:", accuracies)
        assert np.mean(accuracies) >= 0.83

    def test_predicts_article_image(self, trained, artifacts):
        assert trained.predict(artifacts / "predict-image.png") == ["Ankle Boot"]

    def test_sample_request_agreement(self, trained, artifacts):
        folder = artifacts / "sample-request"
        with open(folder / "labels.csv") as handle:
            truth = {row["file"]: int(row["label"]) for row in csv.DictReader(handle)}
        predictions = trained.predict(folder, output="predictions")
        agree = np.mean([p.index == truth[p.path.split("/")[-1]] for p in predictions])
        assert len(predictions) == 200 and agree >= 0.80
        assert set(p.label for p in predictions) <= set(LABELS)

    def test_evaluation_metrics_consistent(self, trained):
        result = trained.evaluate()
        assert result.confusion.sum() == 10000
        assert result.accuracy == pytest.approx(np.trace(result.confusion) / 10000)
        assert set(result.per_class_accuracy) == set(LABELS)
