"""The `torch-export` target for mlp, cnn and fast: gated, then run by plain
`torch.export.load(path).module()`, its metadata read with `torch.export.load(extra_files=)`."""

import json

import pytest
import torch

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
    module = torch.export.load(str(path)).module()
    with torch.no_grad():
        return module(torch.from_numpy(images.copy())).numpy()


def plain_metadata(path):
    extra = {"fmnist.json": ""}
    torch.export.load(str(path), extra_files=extra)
    return json.loads(extra["fmnist.json"])


@pytest.mark.parametrize("model", MODELS)
def test_torch_export_is_gated_and_runs_in_plain_torch(real, model, tmp_path):
    trainer = trained_briefly(model, "torch", real)
    result = check_export(trainer, "torch-export", tmp_path, plain_logits, plain_metadata)
    from fmnist_core.apps.exported import open_model

    served = open_model(result.path)
    assert served.backend.name == "torch-export (torch.export)"
    images = real.test.images[:64]
    assert (served.logits(images).argmax(1) == trainer.logits(images).argmax(1)).all()


def test_an_archive_that_would_unpickle_is_refused_unread(real, tmp_path):
    """torch.export.load unpickles weights marked use_pickle (weights_only=False): fmnist
    refuses such an archive before torch reads it, in one line from `fmnist serve`."""
    import subprocess
    import sys
    import zipfile

    from fmnist_core import WeightsError
    from fmnist_core.apps.exported import open_model

    trainer = trained_briefly("mlp", "torch", real, images=256)
    path = trainer.export(tmp_path / "m.pt2", format="torch-export").path
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bad, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("_weights_config.json"):
                config = json.loads(data)
                for entry in config["config"].values():
                    entry["use_pickle"] = True
                data = json.dumps(config).encode()
            target.writestr(item, data)
    with pytest.raises(WeightsError, match="pickled"):
        open_model(bad)
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", "serve", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "pickled" in out.stderr, out.stderr[-500:]
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


class _Owned:
    """A pickle that would run code when unpickled unrestricted."""

    def __reduce__(self):
        return (print, ("owned",))


def _rewritten(path, out, change):
    import zipfile

    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = change(item.filename, source.read(item))
            if data is not None:
                target.writestr(item, data)
    return out


@pytest.mark.parametrize("where", ["data/sample_inputs/model.pt", "extra/notes.pkl"])
def test_a_pickle_anywhere_in_the_archive_is_refused(mlp_pt2, tmp_path, where):
    """torch.export.load reads data/sample_inputs with weights_only=False: a pickle there (or
    anywhere) that the restricted loader refuses is refused before torch sees the archive."""
    import io

    import torch

    from fmnist_core import WeightsError
    from fmnist_core.apps.exported import open_model

    path = mlp_pt2
    open_model(path)  # fmnist's own archive (its sample inputs are tensors) is read
    buffer = io.BytesIO()
    torch.save({"x": _Owned()}, buffer)
    prefix = next(n for n in __import__("zipfile").ZipFile(path).namelist() if "/data/" in n)
    prefix = prefix.split("/data/")[0]
    target = f"{prefix}/{where}"

    def change(name, data):
        return buffer.getvalue() if name == target else data

    bad = _rewritten(path, tmp_path / "bad.pt2", change)
    if target not in __import__("zipfile").ZipFile(bad).namelist():
        with __import__("zipfile").ZipFile(bad, "a") as archive:
            archive.writestr(target, buffer.getvalue())
    with pytest.raises(WeightsError, match="pickle that could run code"):
        open_model(bad)


@pytest.fixture(scope="module")
def mlp_pt2(real, tmp_path_factory):
    trainer = trained_briefly("mlp", "torch", real, images=256)
    return trainer.export(tmp_path_factory.mktemp("pt2") / "m.pt2", format="torch-export").path


def test_a_damaged_archive_is_one_line(mlp_pt2, tmp_path):
    """Truncated, a garbage entry, not a zip: `fmnist serve` of each is one line naming the file,
    exit 1 (all three in one process of their own: one start-up of torch)."""
    path = mlp_pt2
    data = path.read_bytes()
    damaged = {name: tmp_path / f"{name}.pt2" for name in ("truncated", "garbage", "not-a-zip")}
    damaged["truncated"].write_bytes(data[: len(data) * 2 // 3] + data[-200:])
    _rewritten(path, damaged["garbage"],
               lambda n, d: b"\x00garbage{" if n.endswith("model.json") else d)  # fmt: skip
    damaged["not-a-zip"].write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    answers = commands_in_one_process(
        *(["serve", str(bad), "--port", "0"] for bad in damaged.values()), quiet=True
    )
    for (damage, bad), (code, _, said) in zip(damaged.items(), answers, strict=True):
        assert code == 1, (damage, said[-800:])
        assert len(said.strip().splitlines()) == 1 and str(bad) in said, (damage, said)
