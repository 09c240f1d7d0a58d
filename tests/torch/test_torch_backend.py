import csv
import pickle

import numpy as np
import pytest
import torch
from fmnist_torch.data import FashionMNIST
from torch import nn

from fmnist_core import Trainer, WeightsError, read_weights
from fmnist_core.testing import BackendConformance, RealDataAcceptance, synthetic_dataset


class TestTorchConformance(BackendConformance):
    backend = "torch"


class TestTorchAutogradConformance(BackendConformance):
    backend = "torch"
    options = {"step": "autograd"}
    numbers_only = True  # the default options' class checks the rest


class TestTorchExactKernelsConformance(BackendConformance):
    # channels_last=False: NCHW convolutions, the exact path kept beside the faster default
    backend = "torch"
    options = {"channels_last": False}
    numbers_only = True  # the default options' class checks the rest


class ArticleNetwork(nn.Module):
    """The article's NeuralNetwork, verbatim."""

    def __init__(self):
        super().__init__()
        self.sequence = nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, 20), nn.ReLU(), nn.Linear(20, 10)
        )

    def forward(self, x):
        return self.sequence(x)


class TestTorchOnRealData(RealDataAcceptance):
    backend = "torch"

    def test_article_weights_evaluate_as_article_forward(self, real, artifacts):
        path = artifacts / "pytorch" / "weights.pth"
        model = ArticleNetwork()
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        with torch.no_grad():
            x = torch.from_numpy(real.test.images.astype(np.float32) / 255.0)
            article_accuracy = (model(x).argmax(1).numpy() == real.test.labels).mean()
        loaded = Trainer.load(path, backend="torch", verbose=0, data=real)
        assert loaded.evaluate().accuracy == article_accuracy
        folder = artifacts / "sample-request"
        with open(folder / "labels.csv") as handle:
            truth = [int(row["label"]) for row in csv.DictReader(handle)]
        predicted = loaded.predict(folder, output="indices")
        assert np.mean(np.array(predicted) == np.array(truth)) >= 0.8
        assert loaded.predict(artifacts / "predict-image.png") == ["Ankle Boot"]

    def test_pth_written_by_fmnist_loads_in_article_code(self, trained, tmp_path, real):
        path = trained.save(tmp_path / "weights.pth")
        model = ArticleNetwork()
        model.load_state_dict(torch.load(path, weights_only=True))
        with torch.no_grad():
            logits = model(
                torch.from_numpy(real.test.images[:100].astype(np.float32) / 255.0)
            ).numpy()
        np.testing.assert_allclose(
            logits, trained.logits(real.test.images[:100]), rtol=1e-5, atol=1e-5
        )

    def test_torch_dataset_matches_torchvision_to_tensor(self, real):
        from fmnist_torch.data import image_grid
        from torchvision.transforms import ToTensor

        dataset = FashionMNIST(train=False, data_dir=None)
        image, label = dataset[0]
        assert (
            image.shape == (1, 28, 28)
            and image.dtype == torch.float32
            and float(image.max()) <= 1.0
        )
        assert label == int(real.test.labels[0]) and len(dataset) == 10000
        transformed = FashionMNIST(train=False, transform=ToTensor())[0][0]
        assert torch.equal(transformed, image)
        grid = image_grid(real.test.images[:16], nrow=8)
        assert grid.shape == (3, 2 * 30 + 2, 8 * 30 + 2)

    @pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs CUDA (run on the device machine)"
    )
    def test_cuda_matches_cpu(self, trained, real):
        gpu = Trainer(backend="torch", seed=0, verbose=0, data=real, device="cuda")
        gpu.fit()
        assert abs(gpu.evaluate().accuracy - trained.evaluate().accuracy) <= 0.005


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pth_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        torch.save({"x": Evil()}, handle)
    with pytest.raises(
        WeightsError, match="holds pickled Python objects besides tensors; refused"
    ) as info:
        read_weights(path)
    assert "\x1b" not in str(info.value)
    pickled = tmp_path / "raw.pth"
    pickled.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(
        WeightsError, match="not a PyTorch state_dict file|holds pickled Python objects"
    ):
        read_weights(pickled)


def test_pth_of_another_model(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(nn.Sequential(nn.Linear(3, 4)).state_dict(), path)
    with pytest.raises(WeightsError, match="which fit no known model"):
        read_weights(path)


def test_device_errors_clearly():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from fmnist_core import BackendError

    with pytest.raises(BackendError, match="no CUDA device"):
        _ = Trainer(backend="torch", device="cuda", data=synthetic_dataset(), verbose=0).engine


def test_precision_and_layout_options_on_the_cpu():
    from fmnist_core import BackendError

    data = synthetic_dataset()
    plain = Trainer(
        backend="torch",
        model="cnn",
        data=data,
        epochs=1,
        batch_size=32,
        verbose=0,
        device="cpu",
        channels_last=False,
    )
    layout = Trainer(
        backend="torch", model="cnn", data=data, epochs=1, batch_size=32, verbose=0, device="cpu"
    )
    # on by default for convolutions (faster); off for models without, and on request
    assert layout.engine.channels_last and not plain.engine.channels_last
    assert not Trainer(backend="torch", data=data, verbose=0).engine.channels_last
    np.testing.assert_allclose(layout.fit()[0].loss, plain.fit()[0].loss, rtol=1e-4)
    with pytest.raises(BackendError, match="tf32=True applies to CUDA"):
        _ = Trainer(backend="torch", data=data, device="cpu", tf32=True).engine


def test_bfloat16_precision_trains_with_float32_weights(tmp_path):
    data = synthetic_dataset()
    settings = dict(model="cnn", data=data, epochs=2, batch_size=32, verbose=0, device="cpu")
    bf16 = Trainer(backend="torch", precision="bfloat16", **settings)
    exact = Trainer(backend="torch", **settings)
    history, reference = bf16.fit(), exact.fit()
    assert bf16.computes_in == "bfloat16" and not bf16.engine.fused
    assert history[-1].loss < history[0].loss
    # not the float32 steps, but close to them: bfloat16 keeps 8 bits of mantissa
    assert history[0].loss != reference[0].loss
    np.testing.assert_allclose(history[0].loss, reference[0].loss, rtol=0.05)
    assert all(p.dtype == np.float32 for p in bf16.params.values())
    assert bf16.recorded()["precision"] == "bfloat16"
    assert bf16.logits(data.test.images[:4]).dtype == np.float32
    bf16.save(tmp_path / "bf16.safetensors")  # float32 weights: NumPy loads them as they are
    loaded = Trainer.load(tmp_path / "bf16.safetensors", backend="numpy", data=data, verbose=0)
    assert loaded.computes_in == "float32"
    np.testing.assert_array_equal(loaded.params["fc1.weight"], bf16.params["fc1.weight"])


def test_refused_pth_is_fmnists_one_line(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        torch.save({"x": Evil()}, handle)
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "evaluate", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "pwned" not in out.stdout
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]  # one line, no torch warning
    assert "holds pickled Python objects besides tensors; refused" in out.stderr


def test_predicting_with_torch_weights_of_a_small_model_imports_no_framework(tmp_path):
    """fmnist predict/evaluate of a small model's .safetensors use NumPy unless a backend is
    asked for (0.3 s against 3.4 s through torch's import for one image); --backend torch is
    honoured."""
    import json
    import subprocess
    import sys

    from PIL import Image

    data = synthetic_dataset()
    trainer = Trainer(backend="torch", data=data, epochs=1, verbose=0)
    trainer.fit()
    weights = trainer.save(tmp_path / "w.safetensors")
    Image.fromarray(data.test.images[0]).save(tmp_path / "one.png")
    probe = (
        "import json, sys; from fmnist_core.cli import main; "
        "code = main(sys.argv[1:]); print(json.dumps(['torch' in sys.modules, code]))"
    )

    def predict(*extra):
        out = subprocess.run(
            [sys.executable, "-c", probe, "predict", "--weights", str(weights),
             str(tmp_path / "one.png"), "--json", *extra],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        lines = out.stdout.strip().splitlines()
        return json.loads("\n".join(lines[:-1])), json.loads(lines[-1])

    rows, (imported, code) = predict()
    assert code == 0 and not imported
    expected = trainer.predict(data.test.images[:1])
    assert [r["label"] for r in rows] == list(expected)
    _, (imported, _) = predict("--backend", "torch")
    assert imported
