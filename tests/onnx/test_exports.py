"""The onnxruntime export targets (`onnx`, `onnx-int8`) for mlp, cnn and fast, each read back by
onnxruntime's own plain `InferenceSession`, and `fmnist serve` answering from the int8 file."""

import numpy as np
import onnxruntime
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


@pytest.fixture(scope="module")
def trained(real):
    return {model: trained_briefly(model, "numpy", real) for model in MODELS}


def plain_logits(path, images):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"images": images})[0]


def plain_metadata(path):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("format", ["onnx", "onnx-int8"])
def test_export_is_gated_and_runs_in_plain_onnxruntime(trained, model, format, tmp_path):
    result = check_export(trained[model], format, tmp_path, plain_logits, plain_metadata)
    if format == "onnx-int8":
        float_size = trained[model].export(tmp_path / "float.onnx", gate=False).size_bytes
        assert result.size_bytes < float_size / 2  # int8 weights: a quarter, plus the graph


def test_serve_answers_from_the_int8_file_itself(trained, real, tmp_path):
    from fastapi.testclient import TestClient

    from fmnist_core.apps.exported import ExportedModel, open_model
    from fmnist_core.apps.serve import create_app
    from fmnist_core.data.images import save_samples

    trainer = trained["mlp"]  # no flip TTA: the plain runtime's answers are the file's graph's
    path = trainer.export(tmp_path / "mlp.int8.onnx", format="onnx-int8").path
    renamed = path.rename(tmp_path / "mlp.onnx")  # recognised by its metadata too
    served = open_model(renamed)
    assert isinstance(served, ExportedModel) and served.backend.name.startswith("onnx-int8")
    samples = [p for p, _, _ in save_samples(real.test, tmp_path / "samples", count=8)]
    expected = plain_logits(renamed, np.stack([real.test.images[i] for i in range(8)])).argmax(1)
    with TestClient(create_app(served)) as client:
        assert client.get("/metadata").json()["backend"] == "onnx-int8 (onnxruntime)"
        files = [("file", (p.name, p.read_bytes(), "image/png")) for p in samples]
        answer = client.post("/predict", files=files).json()["predictions"]
    assert [a["index"] for a in answer] == expected.tolist()


def _fake_npm(tmp_path, tarball, published):
    """An `npm` on PATH that answers `npm view` with ``published`` and `npm pack` with a copy
    of ``tarball`` (no registry is reached in tests)."""
    import stat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = view ]; then echo "{published}"; exit 0; fi\n'
        f'if [ "$1" = pack ]; then cp "{tarball}" "$4/onnxruntime-web-1.31.1.tgz"; exit 0; fi\n'
        "exit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _tarball(path):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as archive:
        for name in (
            "ort.wasm.min.js",
            "ort-wasm-simd-threaded.mjs",
            "ort-wasm-simd-threaded.wasm",
        ):
            data = f"// {name}".encode()
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("honest", [True, False])
def test_the_web_runtime_is_fetched_once_with_npm_and_checked(tmp_path, monkeypatch, capsys,
                                                               honest):  # fmt: skip
    import os

    from fmnist_onnx.exports import _integrity, ort_web_source

    from fmnist_core import WeightsError

    tarball = _tarball(tmp_path / "real.tgz")
    published = _integrity(tarball) if honest else "sha512-AAAA"
    bin_dir = _fake_npm(tmp_path, tarball, published)
    monkeypatch.delenv("FMNIST_ORT_WEB", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    if not honest:
        with pytest.raises(WeightsError, match="does not match the integrity"):
            ort_web_source()
        assert not list((tmp_path / "cache").rglob("*.tgz"))
        return
    found = ort_web_source()
    assert found is not None and found.read_bytes() == tarball.read_bytes()
    assert "checked against its published sha512" in capsys.readouterr().out
    (bin_dir / "npm").unlink()  # the second time: from the cache, no npm needed
    assert ort_web_source() == found


@pytest.mark.parametrize("name, suffix", [("onnx", ".theirs"), ("theirs", ".int8.onnx")])
def test_a_third_party_target_cannot_take_a_built_in_name_or_suffix(name, suffix):
    from fmnist_core import ExportTarget, hookimpl, plugins

    class Theirs:
        @hookimpl
        def fmnist_export_targets(self):
            return [ExportTarget(name=name, description="theirs", suffix=suffix, runtime="x",
                                 write=print, load=print, read_metadata=print, stamp=print,
                                 plugin="theirs")]  # fmt: skip

    manager = plugins.get_plugin_manager()
    plugin = Theirs()
    manager.register(plugin, name="theirs")
    try:
        targets = plugins.export_targets()
        assert targets["onnx"].plugin != "theirs" and "theirs" not in targets
        failures = {f.name: f.error for f in plugins.plugin_failures()}
        assert "built-in" in failures["theirs"]
    finally:
        manager.unregister(plugin)
        plugins.reset()


def test_a_damaged_int8_file_is_one_line(trained, tmp_path):
    """Truncated or garbage: `fmnist serve` and `fmnist evaluate` of each are one line naming
    the file, exit 1 (all four in one process of their own)."""
    path = trained["mlp"].export(tmp_path / "m.int8.onnx", format="onnx-int8").path
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "garbage": b"\x08\xff" * 999}
    commands = []
    for damage, content in damaged.items():
        bad = tmp_path / f"{damage}.int8.onnx"
        bad.write_bytes(content)
        commands += [["serve", str(bad), "--port", "0"], ["evaluate", str(bad)]]
    answers = commands_in_one_process(*commands, quiet=True)
    for command, (code, _, said) in zip(commands, answers, strict=True):
        assert code == 1, (command, said[-800:])
        assert len(said.strip().splitlines()) == 1 and command[1] in said, (command, said)
