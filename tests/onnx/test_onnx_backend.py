"""ONNX export (core, `onnx` only) and the inference-only onnxruntime backend."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fmnist_core import Trainer, WeightsError, load_dataset
from fmnist_core.testing import layer_examples, synthetic_dataset, vocabulary_models


@pytest.fixture(scope="module")
def real(request):
    from tests.conftest import REAL_DATA

    return load_dataset(REAL_DATA)


@pytest.fixture(scope="module")
def trained_mlp(real):
    trainer = Trainer(backend="numpy", data=real, verbose=0)
    trainer.fit()
    return trainer


def compare(source, path, data, images=None):
    exported = Trainer.load(path, data=data, verbose=0)
    assert exported.backend.name == "onnx"
    images = data.test.images if images is None else images
    got, want = exported.logits(images), source.logits(images)
    return (
        float(np.mean(got.argmax(1) == want.argmax(1))),
        float(np.abs(got - want).max()),
        exported,
    )


def test_mlp_export_matches_its_source(trained_mlp, real, tmp_path):
    trained_mlp.export(tmp_path / "mlp.onnx")
    agreement, difference, exported = compare(trained_mlp, tmp_path / "mlp.onnx", real)
    print(f"mlp numpy -> onnx: agreement {agreement:.4f}, max |logit diff| {difference:.2e}")
    assert agreement == 1.0 and difference <= 1e-4
    assert exported.evaluate().accuracy == trained_mlp.evaluate().accuracy


def test_cnn_and_every_layer_export(real, tmp_path):
    # the recipes, the test-only vocabulary models and every layer type's own examples: the
    # graph against the NumPy reference on 2,000 test images (the gate, on all 10,000, is the
    # export targets' own test: tests/onnx/test_exports.py)
    examples = [model for _, model in layer_examples()]
    for spec in ["cnn", *vocabulary_models(), *examples]:
        trainer = Trainer(
            backend="numpy",
            model=spec,
            data=real,
            verbose=0,
            batch_size=32,
            optimizer="adam",
            learning_rate=0.01,
        )
        trainer.engine.attach(real.train.images, real.train.labels)
        trainer.engine.train_steps(
            np.arange(20 * 32).reshape(20, 32), trainer.loop().step_scalars(0, 0, 20)
        )
        path = tmp_path / "m.onnx"
        trainer.export(path, gate=False)
        agreement, difference, _ = compare(trainer, path, real, real.test.images[:2000])
        print(
            f"{trainer.model.name} numpy -> onnx: agreement {agreement:.4f}, max |logit diff| "
            f"{difference:.2e}"
        )
        assert agreement >= 0.999 and difference <= 1e-4


def test_plain_onnxruntime_reads_it_without_fmnist(trained_mlp, real, tmp_path):
    trained_mlp.export(tmp_path / "mlp.onnx")
    np.save(tmp_path / "images.npy", real.test.images[:500])
    code = (
        "import sys, numpy as np, onnxruntime as ort\n"
        "s = ort.InferenceSession(sys.argv[1])\n"
        "assert not any(m.startswith('fmnist') for m in sys.modules)\n"
        "out = s.run(['class_index', 'probabilities'], {'images': np.load(sys.argv[2])})\n"
        "print(out[0].tolist()); assert np.allclose(out[1].sum(1), 1, atol=1e-5)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "mlp.onnx"), str(tmp_path / "images.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [
        int(i) for i in trained_mlp.logits(real.test.images[:500]).argmax(1)
    ]


def fmnist(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", *map(str, args)], capture_output=True, text=True
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_cli_export_evaluate_predict(trained_mlp, real_data_dir, tmp_path):
    trained_mlp.save(tmp_path / "w.safetensors")
    fmnist("export", tmp_path / "w.safetensors", tmp_path / "m.onnx")
    import onnx

    metadata = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert metadata["epochs_done"] == str(trained_mlp.state.epochs_done) == "5"
    result = json.loads(
        fmnist("evaluate", tmp_path / "m.onnx", "--data-dir", real_data_dir, "--json").stdout
    )
    assert result["backend"] == "onnx" and result["accuracy"] == pytest.approx(
        trained_mlp.evaluate().accuracy
    )
    fmnist("sample", tmp_path / "s", "--count", "3", "--data-dir", real_data_dir)
    rows = json.loads(
        fmnist("predict", "--weights", tmp_path / "m.onnx", tmp_path / "s", "--json").stdout
    )
    assert [r["label"] for r in rows] == trained_mlp.predict(tmp_path / "s")


def test_training_is_refused_in_one_line(real_data_dir, tmp_path):
    out = fmnist(
        "train",
        "--backend",
        "onnx",
        "--out",
        tmp_path / "run",
        "--data-dir",
        real_data_dir,
        check=False,
    )
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert (
        "backend 'onnx' runs inference only and cannot train; fix: train with one of" in out.stderr
    )


def test_bad_onnx_files(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01junk")
    with pytest.raises(WeightsError, match="junk.onnx is not an ONNX model"):
        Trainer.load(tmp_path / "junk.onnx")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "foreign.onnx")
    with pytest.raises(WeightsError, match="fmnist did not write"):
        Trainer.load(tmp_path / "foreign.onnx")


def test_onnx_backend_predicts_arrays():
    data = synthetic_dataset()
    trainer = Trainer(backend="onnx", data=data, verbose=0)
    reference = Trainer(backend="numpy", data=data, verbose=0)
    np.testing.assert_allclose(
        trainer.logits(data.test.images), reference.logits(data.test.images), atol=1e-5
    )
    assert trainer.predict(data.test.images[:4], output="indices") == reference.predict(
        data.test.images[:4], output="indices"
    )


def test_a_plugin_layer_exports_to_onnx(tmp_path, monkeypatch):
    # tests/plugins/fmnist_swish's layer type brings its own ONNX lowering (Layer.to_onnx)
    from fmnist_core import Dense, Flatten, ModelSpec, layer_types, plugins
    from tests.plugins import install_example

    monkeypatch.syspath_prepend(str(install_example(tmp_path / "site")))
    monkeypatch.delenv("FMNIST_PLUGINS", raising=False)
    plugins.reset()
    try:
        swish = layer_types()["Swish"]
        assert plugins.get_backend("onnx").lowers("Swish")
        data = synthetic_dataset()
        spec = ModelSpec("mine", [Flatten(), Dense(32), swish(beta=1.5), Dense(10)])
        trainer = Trainer(backend="numpy", model=spec, data=data, epochs=1, verbose=0)
        trainer.fit()
        trainer.export(tmp_path / "mine.onnx")
        agreement, difference, _ = compare(trainer, tmp_path / "mine.onnx", data)
        assert agreement == 1.0 and difference <= 1e-4
    finally:
        plugins.reset()


@pytest.mark.parametrize("dims", [[10**12], [2**62, 2**62], [784, 21]])
def test_onnx_initializer_claiming_absurd_dims_is_one_line(trained_mlp, tmp_path, dims):
    import onnx

    trained_mlp.export(tmp_path / "mlp.onnx")
    model = onnx.load(str(tmp_path / "mlp.onnx"))
    tensor = next(t for t in model.graph.initializer if t.name == "fc1.weight")
    del tensor.dims[:]
    tensor.dims.extend(dims)
    onnx.save(model, str(tmp_path / "lying.onnx"))
    for command in (
        ["evaluate", tmp_path / "lying.onnx"],
        ["convert", tmp_path / "lying.onnx", tmp_path / "out.safetensors"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "fmnist_core.cli", *map(str, command)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert "initializer fc1.weight declares shape" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("config", ["[1]", '"x"', "5"])
def test_onnx_metadata_of_the_wrong_shape(trained_mlp, tmp_path, config):
    import onnx

    trained_mlp.export(tmp_path / "mlp.onnx")
    model = onnx.load(str(tmp_path / "mlp.onnx"))
    for prop in model.metadata_props:
        if prop.key == "config":
            prop.value = config
    onnx.save(model, str(tmp_path / "odd.onnx"))
    assert Trainer.load(tmp_path / "odd.onnx", verbose=0).backend.name == "onnx"
