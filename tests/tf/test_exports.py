"""The `litert` target for mlp, cnn and fast: gated, then run by the plain LiteRT interpreter
(`ai_edge_litert`), its metadata read from the flatbuffer with TensorFlow's own schema tools."""

import json

import numpy as np
import pytest

from fmnist_core import load_dataset
from fmnist_core.testing.exports import MODELS, check_export, trained_briefly


@pytest.fixture(scope="module")
def real():
    from tests.conftest import REAL_DATA

    return load_dataset(REAL_DATA)


def plain_logits(path, images):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return runner(images=np.ascontiguousarray(images))["logits"]


def plain_metadata(path):
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    entry = next(m for m in model.metadata if m.name in (b"fmnist", "fmnist"))
    return json.loads(bytes(model.buffers[entry.buffer].data).decode())


@pytest.mark.parametrize("model", MODELS)
def test_litert_export_is_gated_and_runs_in_the_plain_interpreter(real, model, tmp_path):
    trainer = trained_briefly(model, "tf", real)
    result = check_export(trainer, "litert", tmp_path, plain_logits, plain_metadata)
    from fmnist_core.apps.exported import open_model

    served = open_model(result.path)
    assert served.backend.name == "litert (LiteRT)"
    images = real.test.images[:64]
    assert (served.logits(images).argmax(1) == trainer.logits(images).argmax(1)).all()


@pytest.fixture(scope="module")
def mlp_tflite(real, tmp_path_factory):
    trainer = trained_briefly("mlp", "tf", real, images=256)
    return trainer.export(tmp_path_factory.mktemp("litert") / "m.tflite", format="litert").path


@pytest.mark.parametrize("damage", ["truncated", "fuzzed", "bad-offset", "not-tflite"])
def test_a_damaged_tflite_is_one_line_before_the_interpreter_sees_it(mlp_tflite, tmp_path,
                                                                      damage):  # fmt: skip
    import subprocess
    import sys

    data = bytearray(mlp_tflite.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "fuzzed":
        rng = np.random.default_rng(0)
        for index in rng.integers(8, len(data), 400):
            data[index] = int(rng.integers(0, 256))
    elif damage == "bad-offset":
        data[:4] = (len(data) + 1000).to_bytes(4, "little")
    else:
        data = bytearray(b"\x00" * 64)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data))
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "serve", str(bad), "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr[-800:]
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert str(bad) in out.stderr
