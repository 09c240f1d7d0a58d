"""Every installed backend computes the same thing as the NumPy reference, and weights move
between them without loss. The parity nox session installs every plugin."""

import numpy as np
import pytest

from fmnist_core import get_model, load_dataset
from fmnist_core.testing.parity import first_step_losses, installed_backends, train_all, transfers

BACKENDS = installed_backends()


@pytest.fixture(scope="module")
def real():
    from tests.conftest import REAL_DATA

    return load_dataset(REAL_DATA)


def test_every_framework_plugin_installed():
    from fmnist_core import backends

    assert {"numpy", "torch", "tf", "keras"} <= set(BACKENDS) and "onnx" in backends()


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_initial_weights(backend, real):
    from fmnist_core import Trainer

    params = Trainer(backend=backend, data=real, seed=11, verbose=0).params
    for name, value in get_model("mlp").init_params(11).items():
        np.testing.assert_array_equal(params[name], value, err_msg=f"{backend} {name}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_batches_in_same_order(backend, real):
    from fmnist_core import Trainer

    trainer = Trainer(backend=backend, data=real, seed=2, epochs=1, verbose=0)
    seen = []
    original = trainer.engine.train_steps
    trainer.engine.train_steps = lambda block, scalars: (
        seen.append(block.copy()),
        original(block, scalars),
    )[1]
    trainer.fit()
    from fmnist_core.engine.batching import epoch_permutation

    np.testing.assert_array_equal(
        np.concatenate([b.ravel() for b in seen]), epoch_permutation(2, 0, 60000)
    )


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_first_100_step_losses_match_reference(backend, real):
    reference = first_step_losses("numpy", real)
    losses = first_step_losses(backend, real)
    relative = np.abs(losses - reference) / np.abs(reference)
    print(f"{backend}: max relative per-step loss difference over 100 steps {relative.max():.2e}")
    assert relative.max() <= 1e-4


@pytest.fixture(scope="module")
def trained(real):
    return train_all(real, BACKENDS)


def test_final_accuracies_agree(trained):
    accuracies = {name: t.accuracy for name, t in trained.items()}
    print("test accuracies after 5 epochs:", accuracies)
    assert max(accuracies.values()) - min(accuracies.values()) <= 0.002


def test_weights_move_between_every_pair(trained, real):
    results = transfers(trained, real)
    assert {(r.source, r.target) for r in results} == {
        (a, b) for a in trained for b in trained if a != b
    }
    for r in results:
        print(
            f"{r.source:>6} -> {r.target:<6} via {r.format:<13} argmax agreement "
            f"{r.argmax_agreement:.4f}, "
            f"max |logit diff| {r.max_logit_difference:.2e}"
        )
        assert r.argmax_agreement == 1.0, r
        assert r.max_logit_difference <= 1e-4, r


def test_article_pth_converts_to_keras(artifacts, tmp_path, real):
    from fmnist_core import Trainer
    from fmnist_core.cli import main

    assert (
        main(
            ["convert", str(artifacts / "pytorch" / "weights.pth"), str(tmp_path / "article.keras")]
        )
        == 0
    )
    original = Trainer.load(
        artifacts / "pytorch" / "weights.pth", backend="numpy", data=real, verbose=0
    )
    converted = Trainer.load(tmp_path / "article.keras", backend="keras", data=real, verbose=0)
    got, want = converted.logits(real.test.images), original.logits(real.test.images)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # a class is only defined where the top two logits differ by more than float32 noise
    top2 = np.sort(want, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 1e-4
    print(
        f"article weights .pth -> .keras: {int((~decided).sum())} near-ties, "
        f"agreement {np.mean(got.argmax(1) == want.argmax(1)):.4f}"
    )
    np.testing.assert_array_equal(got.argmax(1)[decided], want.argmax(1)[decided])


def test_torch_autograd_after_tensorflow_in_one_process(real):
    """torch.optim imports triton, which segfaulted after TensorFlow; the backend avoids it."""
    import tensorflow  # noqa: F401

    from fmnist_core import Trainer

    trainer = Trainer(backend="torch", step="autograd", data=real, epochs=1, verbose=0)
    assert trainer.fit()[0].accuracy > 0.7
    _ = Trainer(backend="tf", data=real, verbose=0).engine  # the TF backend guards triton
    from fmnist_torch.data import image_grid  # imports torchvision.ops -> torch._dynamo

    assert image_grid(real.test.images[:4]).shape[0] == 3


#: docs/weights-and-parity.md: torch's default channels-last convolutions sum in another order
CNN_TOLERANCE = {"torch": 5e-4}
CNN_RUNS = [(b, {}) for b in BACKENDS if b != "numpy"]
CNN_RUNS += [("torch", {"channels_last": False})] if "torch" in BACKENDS else []


@pytest.mark.parametrize("backend, options", CNN_RUNS, ids=[f"{b}{o or ''}" for b, o in CNN_RUNS])
def test_cnn_first_20_step_losses_match_reference(backend, options, real):
    reference = first_step_losses("numpy", real, steps=20, model="cnn")
    losses = first_step_losses(backend, real, steps=20, model="cnn", **options)
    relative = np.abs(losses - reference) / np.abs(reference)
    print(
        f"{backend}{options or ''}: cnn recipe, max relative per-step loss difference over 20 "
        f"steps {relative.max():.2e}"
    )
    assert relative.max() <= (CNN_TOLERANCE.get(backend, 1e-4) if not options else 1e-4)


@pytest.fixture(scope="module")
def trained_cnn(real):
    from fmnist_core import Trainer

    # 150 steps: weights far from their initialisation, moved and compared; not the recipe
    trainer = Trainer(backend="torch", model="cnn", data=real, epochs=1, steps_per_epoch=150,
                      verbose=0)  # fmt: skip
    trainer.fit()
    return trainer


@pytest.mark.parametrize("target", BACKENDS)
def test_cnn_weights_move_to_every_backend(trained_cnn, target, real, tmp_path):
    from fmnist_core import Trainer

    images = real.test.images[:2000]  # agreement to 0.999 over 2,000 (NumPy's convolutions)
    reference = trained_cnn.logits(images)
    for fmt in ("safetensors", "pth"):
        path = tmp_path / f"cnn.{fmt}"
        trained_cnn.save(path)
        moved = Trainer.load(path, backend=target, data=real, verbose=0)
        logits = moved.logits(images)
        agreement = float(np.mean(logits.argmax(1) == reference.argmax(1)))
        print(
            f"cnn torch -> {target} via {fmt}: argmax agreement {agreement:.4f}, "
            f"max |logit diff| {np.abs(logits - reference).max():.2e}"
        )
        assert agreement >= 0.999


def test_readme_backend_table_lists_the_declared_options():
    import re
    from pathlib import Path

    from fmnist_core import backends

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, backend in backends().items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        options = re.sub(r"\([^)]*\)", "", row.split("|")[4])
        documented = re.findall(r"`([a-z_][a-z0-9_]*)`", options)
        assert documented == [o.name for o in backend.options], (name, documented)


def test_onnx_export_of_every_backend(trained, trained_cnn, real, tmp_path):
    from fmnist_core import Trainer

    sources = {f"mlp/{name}": t.trainer for name, t in trained.items()} | {"cnn/torch": trained_cnn}
    for label, source in sources.items():
        path = tmp_path / f"{label.replace('/', '-')}.onnx"
        source.export(path)
        exported = Trainer.load(path, data=real, verbose=0)
        got, want = exported.logits(real.test.images), source.logits(real.test.images)
        agreement = float(np.mean(got.argmax(1) == want.argmax(1)))
        print(
            f"{label} -> onnx: argmax agreement {agreement:.4f}, max |logit diff| "
            f"{np.abs(got - want).max():.2e}"
        )
        assert (
            exported.backend.name == "onnx"
            and agreement == 1.0
            and np.abs(got - want).max() <= 1e-4
        )


def test_article_pth_exported_to_onnx(artifacts, real, tmp_path):
    from fmnist_core import Trainer
    from fmnist_core.cli import main

    assert (
        main(["export", str(artifacts / "pytorch" / "weights.pth"), str(tmp_path / "article.onnx")])
        == 0
    )
    accuracy = Trainer.load(tmp_path / "article.onnx", data=real, verbose=0).evaluate().accuracy
    print(f"the article's weights.pth as ONNX: test accuracy {accuracy:.4f}")
    assert accuracy == pytest.approx(0.8513, abs=1e-4)
