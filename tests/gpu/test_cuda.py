"""CUDA: parity with the CPU for every model and optimizer, and the precision options.

`nox -s tests-gpu`; every test skips, saying why, where torch sees no CUDA device.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the CUDA tests need torch (nox -s tests-gpu installs it)"
)

from fmnist_core import Trainer, models  # noqa: E402
from fmnist_core.engine.batching import epoch_permutation  # noqa: E402
from fmnist_core.testing import OPTIMIZERS, synthetic_dataset  # noqa: E402

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)"
)


def first_steps(device, model, optimizer, **options):
    data = synthetic_dataset()
    trainer = Trainer(
        backend="torch",
        data=data,
        model=model,
        optimizer=optimizer,
        batch_size=32,
        learning_rate=0.01,
        verbose=0,
        seed=3,
        device=device,
        **options,
    )
    trainer.engine.attach(data.train.images, data.train.labels)
    index = epoch_permutation(3, 0, len(data.train))[: 20 * 32].reshape(20, 32)
    return np.asarray(
        trainer.engine.train_steps(index, trainer.loop().step_scalars(0, 0, 20)).losses
    ), trainer


@pytest.mark.parametrize("model", sorted(models()))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_cuda_matches_cpu(model, optimizer):
    cpu, _ = first_steps("cpu", model, OPTIMIZERS[optimizer])
    gpu, trainer = first_steps("cuda", model, OPTIMIZERS[optimizer])
    assert trainer.engine.device.startswith("cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4)


@pytest.mark.parametrize(
    "options", [{"tf32": True}, {"precision": "bfloat16"}, {"channels_last": True}]
)
def test_precision_options_train(options):
    losses, trainer = first_steps("cuda", "cnn", OPTIMIZERS["adam"], **options)
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    recorded = trainer.recorded()
    assert {**recorded["options"], **recorded}.items() >= options.items()
