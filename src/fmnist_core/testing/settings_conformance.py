"""The part of ``BackendConformance`` that checks the core's settings on a backend:
augmentation, label smoothing, the weight average, test-time augmentation, resuming, the
speedrun recipes' own settings, bfloat16."""

from __future__ import annotations

import numpy as np
import pytest

from ..errors import ConfigError
from ..labels import NUM_CLASSES
from ..plugins import get_backend, get_model, layer_types
from ..spec.layers import Conv2D, Dense, Flatten, ReLU
from ..spec.model import ModelSpec
from ..training.config import TrainConfig
from ..training.trainer import Trainer
from .models import (
    OPTIMIZERS,
    _StopAfter,
    layer_examples,
    vocabulary_models,
)


def _assert_bfloat16_close(narrow, exact, rtol: float) -> None:
    """Losses within ``rtol``, relative to each loss and, as losses fall, to the first: a
    bfloat16 step's error scales with the logits, not with the shrinking loss (a loss of 0.13
    after 8 steps is 1.8% off on an AVX2 CPU, whose bfloat16 kernels round differently)."""
    exact = np.asarray(exact)
    np.testing.assert_allclose(narrow, exact, rtol=rtol, atol=rtol * float(exact[0]))


class SettingsConformance:
    """Mixed into ``BackendConformance``, which provides ``backend``, ``options``, ``trainer``,
    ``first_steps`` and the tolerances."""

    @pytest.mark.parametrize("kind", sorted(layer_types()))
    def test_bfloat16_steps_follow_the_reference(self, dataset, kind):
        """Every layer type (its first example stack) takes its first steps under
        precision="bfloat16" within ``bfloat16_rtol`` of the NumPy reference's float32 steps."""
        if "bfloat16" not in get_backend(self.backend).precisions:
            pytest.skip(f"the {self.backend} backend computes in float32 only (tested below)")
        model = dict(layer_examples())[f"{kind}-1"]
        sgd = OPTIMIZERS["sgd-nesterov-wd"]
        narrow, _, trainer = self.first_steps(
            self.backend, dataset, model, sgd, 8, lr=0.01, precision="bfloat16"
        )
        exact, _, _ = self.first_steps("numpy", dataset, model, sgd, 8, lr=0.01)
        assert trainer.computes_in == "bfloat16"
        _assert_bfloat16_close(narrow.losses, exact.losses, self.bfloat16_rtol)

    def test_bfloat16_is_narrower_and_keeps_float32_weights(self, dataset):
        """bfloat16 really computes in bfloat16 (not the float32 steps) with float32 weights; a
        backend without it refuses it in one line, and "auto" is float32 there."""
        model = dict(layer_examples())["Conv2D-1"]
        if "bfloat16" not in get_backend(self.backend).precisions:
            with pytest.raises(ConfigError, match="computes in float32 only"):
                self.trainer(dataset, model=model, precision="bfloat16")
            assert self.trainer(dataset, model=model, precision="auto").computes_in == "float32"
            return
        sgd = OPTIMIZERS["sgd-nesterov-wd"]
        narrow, params, _ = self.first_steps(
            self.backend, dataset, model, sgd, 8, lr=0.01, precision="bfloat16"
        )
        exact, _, _ = self.first_steps(self.backend, dataset, model, sgd, 8, lr=0.01)
        assert all(np.asarray(p).dtype == np.float32 for p in params.values())
        _assert_bfloat16_close(narrow.losses, exact.losses, self.bfloat16_rtol)
        assert not np.array_equal(narrow.losses, exact.losses), "bfloat16 computed in float32"

    def fit_one_epoch(self, backend, dataset, model="cnn", **extra):
        """A whole epoch through the loop (batch 32, every step's loss recorded)."""
        opts = self.options if backend == self.backend else {}
        settings = {
            "batch_size": 32,
            "log_every": 1,
            "seed": 5,
            "optimizer": "adam",
            "learning_rate": 0.003,
            "schedule": "constant",
            "epochs": 1,
            **extra,
        }
        trainer = Trainer(backend=backend, data=dataset, model=model, verbose=0, **settings, **opts)
        trainer.fit()
        return np.array([p.batch_loss for p in trainer.history.progress]), trainer

    def _compare_epoch_with_numpy(self, dataset, model, **extra):
        mine, trainer = self.fit_one_epoch(self.backend, dataset, model, **extra)
        ref, reference = self.fit_one_epoch("numpy", dataset, model, **extra)
        np.testing.assert_allclose(mine[:20], ref[:20], rtol=self.reference_rtol)
        return trainer, reference

    def test_augmentation_is_the_cores_on_every_backend(self, dataset):
        # the same augmented images reach every backend: flip, translate and erase drawn per
        # sample, blocks of 5 steps so that several augmented blocks are attached in turn
        model = ModelSpec(
            "test-aug", [Conv2D(4, 3, stride=2), ReLU(), Flatten(), Dense(NUM_CLASSES)]
        )
        settings = {"augment": "flip,translate:2,erase:0.5", "steps_per_execution": 5}
        trainer, reference = self._compare_epoch_with_numpy(dataset, model, **settings)
        plain, _ = self.fit_one_epoch(self.backend, dataset, model, steps_per_execution=5)
        assert not np.allclose(
            self.fit_one_epoch(self.backend, dataset, model, **settings)[0], plain
        )
        assert trainer.recorded()["augment"] == "flip,translate:2,erase:0.5"
        images = dataset.test.images[:50]  # evaluation never augments
        np.testing.assert_allclose(
            trainer.logits(images), reference.logits(images), rtol=1e-3, atol=1e-4
        )

    @pytest.mark.parametrize("model", ["fast", "balanced", "accurate"])
    def test_speedrun_recipes_first_steps_match_numpy(self, dataset, model):
        """Each speedrun recipe's network with its own settings (augmentation, label smoothing,
        weight average) takes the same first steps as the NumPy reference."""
        recipe = TrainConfig().resolve(get_model(model).recipe)
        settings = dict(
            augment=recipe.augment, label_smoothing=recipe.label_smoothing, ema=recipe.ema
        )
        mine, _, _ = self.first_steps(self.backend, dataset, model, "adam", 8, lr=0.003, **settings)
        ref, _, _ = self.first_steps("numpy", dataset, model, "adam", 8, lr=0.003, **settings)
        np.testing.assert_allclose(mine.losses, ref.losses, rtol=self.reference_rtol * 10)

    @pytest.mark.parametrize("model", ["mlp", "cnn"])
    def test_label_smoothing_matches_numpy(self, dataset, model):
        mine, _, _ = self.first_steps(
            self.backend, dataset, model, "adam", lr=0.003, label_smoothing=0.1
        )
        ref, _, _ = self.first_steps("numpy", dataset, model, "adam", lr=0.003, label_smoothing=0.1)
        plain, _, _ = self.first_steps("numpy", dataset, model, "adam", lr=0.003)
        np.testing.assert_allclose(mine.losses, ref.losses, rtol=self.reference_rtol)
        assert not np.allclose(ref.losses, plain.losses, rtol=1e-3)

    def test_weight_average_is_evaluated_and_matches_numpy(self, dataset, tmp_path):
        trainer, reference = self._compare_epoch_with_numpy(dataset, "mlp", ema=0.9)
        averaged, trained = trainer.evaluated_params(), trainer.params
        for name, value in reference.evaluated_params().items():
            np.testing.assert_allclose(averaged[name], value, rtol=2e-3, atol=2e-4, err_msg=name)
        assert not np.allclose(averaged["fc1.weight"], trained["fc1.weight"])
        images = dataset.test.images[:50]
        plain = Trainer(backend="numpy", data=dataset, verbose=0)
        plain.set_params(averaged)
        np.testing.assert_allclose(
            trainer.logits(images), plain.logits(images), rtol=1e-4, atol=1e-5
        )
        saved = Trainer.load(
            trainer.save(tmp_path / "averaged.safetensors"), data=dataset, verbose=0
        )
        np.testing.assert_array_equal(saved.params["fc1.weight"], averaged["fc1.weight"])

    def test_test_time_augmentation(self, dataset):
        trainer = self.trainer(
            dataset, epochs=1, model="cnn", optimizer="adam", learning_rate=0.003
        )
        trainer.fit()
        images = dataset.test.images[:40]
        both = (
            trainer.logits(images, tta=False) + trainer.logits(images[..., ::-1].copy(), tta=False)
        ) / 2
        np.testing.assert_allclose(trainer.logits(images, tta=True), both, rtol=1e-6, atol=1e-6)
        reference = Trainer(backend="numpy", model="cnn", data=dataset, verbose=0)
        reference.set_params(trainer.params)
        np.testing.assert_allclose(
            trainer.logits(images, tta=True),
            reference.logits(images, tta=True),
            rtol=1e-3,
            atol=1e-4,
        )
        assert 0 <= trainer.evaluate(tta=True).accuracy <= 1

    @pytest.mark.parametrize("optimizer", ["sgd", "sgd-nesterov-wd", "adamw", "augment+ema"])
    def test_resume_equals_uninterrupted(self, dataset, tmp_path, optimizer):
        settings = {
            "optimizer": OPTIMIZERS.get(optimizer, OPTIMIZERS["adamw"]),
            "schedule": "onecycle",
            "learning_rate": 0.02,
            "model": vocabulary_models()[1] if optimizer in ("adamw", "augment+ema") else "mlp",
        }
        if optimizer == "augment+ema":
            settings.update(augment="flip,translate:2,erase:0.5", ema=0.9, label_smoothing=0.1)
        full = self.trainer(dataset, epochs=4, **settings)
        full.fit()
        part = self.trainer(dataset, epochs=4, callbacks=[_StopAfter(2)], **settings)
        part.fit(checkpoint_dir=tmp_path)  # interrupted after epoch 2 of 4: the schedule spans 4
        resumed = Trainer.resume(tmp_path, data=dataset, verbose=0)
        assert resumed.backend.name == self.backend and resumed.optimizer == settings["optimizer"]
        assert resumed.fit(epochs=4).metrics() == full.history.metrics()
        for name, value in full.params.items():
            np.testing.assert_array_equal(resumed.params[name], value, err_msg=name)
        for name, value in full.evaluated_params().items():  # the average too, with ema
            np.testing.assert_array_equal(resumed.evaluated_params()[name], value, err_msg=name)
