"""The `torch-export` target for mlp, cnn and fast: gated, then run by plain
`torch.export.load(path).module()`, its metadata read with `torch.export.load(extra_files=)`."""

import json

import pytest
import torch

from fmnist_core import load_dataset
from fmnist_core.testing.exports import MODELS, check_export, trained_briefly


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
    from fmnist_core.apps.exported import load_servable

    served = load_servable(result.path)
    assert served.backend.name == "torch-export (torch.export)"
    images = real.test.images[:64]
    assert (served.logits(images).argmax(1) == trainer.logits(images).argmax(1)).all()
