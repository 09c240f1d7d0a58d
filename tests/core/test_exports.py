"""The export gate (``fmnist export``, ``Trainer.export``), with no framework: the gate's rule
on made-up logits, and whole exports through two test targets registered as a plugin — one
faithful, one whose weights were disturbed — on the real test set."""

import json
import types
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import (
    ExportError,
    ExportTarget,
    Trainer,
    Weights,
    hookimpl,
    load_dataset,
    plugins,
    read_weights,
    write_weights,
)
from fmnist_core.cli import main
from fmnist_core.training.export import compare


def _writer(noise: float):
    def write(path, weights, metadata, calibration):
        rng = np.random.default_rng(0)
        params = {
            k: v + noise * rng.standard_normal(v.shape).astype(np.float32)
            for k, v in weights.params.items()
        }
        write_weights(path, Weights(weights.model, params, {**weights.metadata, **metadata}),
                      format="safetensors")  # fmt: skip

    return write


def _stamp(path, metadata):
    weights = read_weights(path, format="safetensors")
    write_weights(path, Weights(weights.model, weights.params, metadata), format="safetensors")


def _target(name: str, noise: float) -> ExportTarget:
    return ExportTarget(
        name=name,
        description=f"test target, weights + {noise} noise",
        suffix=f".{name}.safetensors",
        runtime="NumPy",
        write=_writer(noise),
        load=lambda path: (
            Trainer.load(path, backend="numpy", format="safetensors", verbose=0).logits
        ),
        read_metadata=lambda path: dict(read_weights(path, format="safetensors").metadata),
        stamp=_stamp,
        plugin="tests",
    )


def _folder_target() -> ExportTarget:
    inside = "model.safetensors"
    return ExportTarget(
        name="folder",
        description="test target: a folder holding the weights",
        suffix="/",
        runtime="NumPy",
        write=lambda path, w, m, c: _writer(0.0)(Path(path) / inside, w, m, c),
        load=lambda path: Trainer.load(Path(path) / inside, backend="numpy", verbose=0).logits,
        read_metadata=lambda path: dict(
            read_weights(Path(path) / inside, format="safetensors").metadata
        ),
        stamp=lambda path, metadata: _stamp(Path(path) / inside, metadata),
        plugin="tests",
    )


class TestTargets:
    @hookimpl
    def fmnist_export_targets(self):
        return [_target("faithful", 0.0), _target("disturbed", 0.05), _folder_target()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    from tests.conftest import REAL_DATA

    manager = plugins.get_plugin_manager()
    plugin = TestTargets()
    manager.register(plugin, name="test-export-targets")
    request.addfinalizer(lambda: manager.unregister(plugin))
    run = tmp_path_factory.mktemp("run")
    assert main(["train", "--backend", "numpy", "--epochs", "1", "--out", str(run),
                 "--data", str(REAL_DATA)]) == 0  # fmt: skip
    return Trainer.load(run, data=load_dataset(REAL_DATA), verbose=0), run


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".partial-")]


def test_the_rule_float_agreement_and_probabilities_quantized_accuracy():
    rng = np.random.default_rng(1)
    source = rng.standard_normal((10_000, 10)).astype(np.float32) * 4
    labels = source.argmax(1)
    labels[:1000] = (labels[:1000] + 1) % 10  # source accuracy 0.9
    changed = source.copy()
    rows = np.arange(1000, 1030)  # 30 right answers become wrong: agreement 99.7%, -0.3 point
    changed[rows, (labels[rows] + 5) % 10] = 100.0
    float_target = types.SimpleNamespace(name="f", quantized=False)
    int8_target = types.SimpleNamespace(name="q", quantized=True)
    as_float = compare(float_target, source, changed, labels)
    as_int8 = compare(int8_target, source, changed, labels)
    assert as_float.agreement == pytest.approx(0.997) and not as_float.passed
    assert as_int8.accuracy_change == pytest.approx(-0.003) and as_int8.passed
    same = compare(float_target, source, source + np.float32(1e-6), labels)
    assert same.passed and same.agreement == 1.0
    far = compare(float_target, source, source * np.float32(1.01), labels)
    assert far.agreement > 0.999 and far.max_probability_difference > 1e-4 and not far.passed
    worse = changed.copy()
    rows = np.arange(1000, 1060)  # 60 wrong: -0.6 point
    worse[rows, (labels[rows] + 5) % 10] = 100.0
    assert not compare(int8_target, source, worse, labels).passed


def test_a_faithful_export_passes_and_carries_its_scores(trained, tmp_path):
    trainer, _ = trained
    result = trainer.export(tmp_path / "m.faithful.safetensors", format="faithful")
    assert result.gate.passed and result.gate.agreement == 1.0 and result.gate.images == 10_000
    # float32 rounding alone: the source and the exported model multiply in different
    # chunks, which BLAS blocks differently per CPU (1.2e-6 on an AMD EPYC with AVX2);
    # the gate's bound for a float target is 1e-4
    assert result.gate.max_probability_difference < 1e-5
    recorded = json.loads(read_weights(result.path, format="safetensors").metadata["fmnist_gate"])
    assert recorded["passed"] is True and recorded["enforced"] is True
    assert recorded["export_accuracy"] == pytest.approx(trainer.evaluate(tta=False).accuracy)
    assert leftovers(tmp_path) == []


def test_an_export_that_differs_is_refused_naming_the_numbers(trained, tmp_path):
    trainer, _ = trained
    path = tmp_path / "m.disturbed.safetensors"
    with pytest.raises(ExportError) as caught:
        trainer.export(path, format="disturbed")
    message = str(caught.value)
    assert "refused" in message and "same top-1 on" in message and "--no-gate" in message
    assert "\n" not in message
    assert not path.exists() and leftovers(tmp_path) == []


def test_no_gate_keeps_it_marked_as_not_enforced(trained, tmp_path):
    trainer, _ = trained
    result = trainer.export(tmp_path / "m.disturbed.safetensors", format="disturbed", gate=False)
    assert result.path.exists() and not result.gate.passed
    recorded = json.loads(read_weights(result.path, format="safetensors").metadata["fmnist_gate"])
    assert recorded["passed"] is False and recorded["enforced"] is False


def test_cli_refuses_in_one_line_and_records_in_the_run(trained, capsys):
    _, run = trained
    assert main(["export", str(run), "--format", "disturbed"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fmnist: error: ") and "same top-1" in err[0]
    assert not (run / "model.disturbed.safetensors").exists()
    assert main(["export", str(run), "--format", "faithful"]) == 0
    assert main(["export", str(run), "--format", "disturbed", "--no-gate"]) == 0
    out = capsys.readouterr().out
    assert "gate passed" in out and "not enforced" in out
    card = (run / "README.md").read_text()
    assert card.count("## Exports") == 1
    assert "| `faithful` |" in card and "kept with --no-gate" in card
    exports = json.loads((run / "exports.json").read_text())
    faithful, disturbed = (exports[f"model.{n}.safetensors"] for n in ("faithful", "disturbed"))
    assert faithful["format"] == "faithful" and faithful["gate"]["passed"]
    assert not disturbed["gate"]["passed"]
    assert (run / "model.faithful.safetensors").exists()


def test_records_are_one_per_artifact_relative_to_the_run_and_keep_the_users_notes(
    trained, tmp_path, capsys, monkeypatch
):
    import shutil

    _, source = trained
    run = tmp_path / "run"
    shutil.copytree(source, run)
    (run / "exports.json").unlink(missing_ok=True)
    with open(run / "README.md", "a") as card:
        card.write("\n## My notes\n\nTrained for the demo on Monday.\n")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "run", "--format", "faithful"]) == 0
    outside = tmp_path / "elsewhere.faithful.safetensors"
    assert main(["export", "run/weights.safetensors", str(outside), "--format", "faithful"]) == 0
    exports = json.loads((run / "exports.json").read_text())
    assert set(exports) == {"model.faithful.safetensors", str(outside.resolve())}
    card = (run / "README.md").read_text()
    assert "Trained for the demo on Monday." in card and card.count("## Exports") == 1
    assert "`model.faithful.safetensors`" in card and str(tmp_path / "run") not in card


@pytest.mark.parametrize(
    "recorded",
    [
        [1, 2],
        {"onnx": "x"},
        {"a.onnx": {"format": 3, "bytes": 1, "gate": {}}},
        {"a.onnx": {"format": "onnx", "bytes": "many", "gate": {}}},
        {"a.onnx": {"format": "onnx", "bytes": 1, "gate": [1]}},
        {"a.onnx": {"format": "onnx", "bytes": 1, "gate": {"agreement": {"deep": 1}}}},
    ],
)
def test_a_tampered_exports_record_is_one_line(trained, tmp_path, capsys, recorded):
    import shutil

    _, source = trained
    run = tmp_path / "run"
    shutil.copytree(source, run)
    (run / "exports.json").write_text(json.dumps(recorded))
    assert main(["export", str(run), "--format", "faithful"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exports.json" in err[0] and "Traceback" not in err[0]


def test_unknown_or_listed_formats(trained, capsys):
    assert {"faithful", "disturbed"} <= set(plugins.export_targets())
    assert main(["export", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "faithful" in listed and "disturbed" in listed
    _, run = trained
    assert main(["export", str(run), "--format", "gif"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown export format 'gif'" in err[0] and "faithful" in err[0]


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_of_the_users_files_is_never_replaced(trained, tmp_path):
    from fmnist_core import StorageError

    trainer, _ = trained
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the user's page")
    with pytest.raises(StorageError, match="did not write"):
        trainer.export(site, format="folder")
    assert [p.name for p in site.iterdir()] == ["index.html"]
    assert (site / "index.html").read_text() == "the user's page"
    assert leftovers(tmp_path) == []
    fresh = tmp_path / "fresh"
    trainer.export(fresh, format="folder")
    assert (fresh / ".fmnist-written").is_file()
    assert (fresh.stat().st_mode & 0o777) == 0o777 & ~_umask()
    (fresh / "model.safetensors").write_bytes(b"stale")
    trainer.export(fresh, format="folder")  # fmnist's own folder export: replaced
    assert read_weights(fresh / "model.safetensors", format="safetensors").params
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_file_export_onto_a_folder_is_refused_and_any_name_works(trained, tmp_path):
    from fmnist_core import StorageError

    trainer, _ = trained
    folder = tmp_path / "out.faithful.safetensors"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(StorageError, match="a folder"):
        trainer.export(folder, format="faithful")
    assert (folder / "keep.txt").read_text() == "mine"
    named = trainer.export(tmp_path / "model", format="faithful").path  # no suffix: kept
    assert named == tmp_path / "model" and named.is_file()
    assert (named.stat().st_mode & 0o777) == 0o666 & ~_umask()
    named.write_bytes(b"old")
    trainer.export(named, format="faithful")  # a plain file at an explicit path: replaced
    assert read_weights(named, format="safetensors").params


@pytest.mark.parametrize("format", ["faithful", "folder"])
def test_fmnist_reads_back_what_it_exported(trained, tmp_path, format):
    """`fmnist evaluate` of the export gives its gate's test accuracy; `fmnist predict` of 200
    test images the source's labels (a file target and a folder target)."""
    from fmnist_core.apps.exported import ExportedModel, open_model
    from fmnist_core.testing.exports import read_back

    trainer, _ = trained
    result = trainer.export(tmp_path / f"out-{format}", format=format)
    assert isinstance(open_model(result.path), ExportedModel)
    read_back(trainer, result, tmp_path, in_process=True)  # the test's targets: this process
