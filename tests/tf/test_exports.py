"""The `litert` target for mlp, cnn and fast: gated, then run by the plain LiteRT interpreter
(`ai_edge_litert`), its metadata read from the flatbuffer with TensorFlow's own schema tools."""

import json

import numpy as np
import pytest

from fmnist_core import load_dataset
from fmnist_core.testing.exports import (
    MODELS,
    check_export,
    commands_in_one_process,
    trained_briefly,
)


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


def test_a_damaged_tflite_is_one_line_before_the_interpreter_sees_it(mlp_tflite, tmp_path):
    """Truncated, fuzzed, a bad root offset, not a flatbuffer: `fmnist serve` of each is one
    line naming the file, exit 1, and no crash of the interpreter (all four in one process of
    their own: one start-up of TensorFlow)."""
    data = bytes(mlp_tflite.read_bytes())
    fuzzed = bytearray(data)
    rng = np.random.default_rng(0)
    for index in rng.integers(8, len(data), 400):
        fuzzed[index] = int(rng.integers(0, 256))
    contents = {
        "truncated": data[: len(data) // 2],
        "fuzzed": bytes(fuzzed),
        "bad-offset": (len(data) + 1000).to_bytes(4, "little") + data[4:],
        "not-tflite": b"\x00" * 64,
    }
    damaged = {}
    for damage, content in contents.items():
        damaged[damage] = tmp_path / f"{damage}.tflite"
        damaged[damage].write_bytes(content)
    answers = commands_in_one_process(
        *(["serve", str(bad), "--port", "0"] for bad in damaged.values()), quiet=True
    )
    for (damage, bad), (code, _, said) in zip(damaged.items(), answers, strict=True):
        assert code == 1, (damage, said[-800:])
        assert len(said.strip().splitlines()) == 1 and str(bad) in said, (damage, said)
