"""Issue 44's mechanisms in the core: one chunked_logits, export target names from the registry."""

import numpy as np
import pytest

from fmnist_core import BackendError
from fmnist_core.engine import chunked_logits


def test_one_chunked_logits_for_engines_and_exported_runtimes():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    weights = rng.standard_normal((784, 10)).astype(np.float32)
    calls = []

    def run(batch):
        calls.append(len(batch))
        return batch.reshape(len(batch), -1).astype(np.float32) @ weights

    plain = chunked_logits(run, images, chunk=4)
    assert calls == [4, 4, 2] and plain.dtype == np.float32
    np.testing.assert_allclose(plain, run(images), rtol=1e-6)
    mirrored = run(images[:, :, ::-1].copy())
    np.testing.assert_allclose(
        chunked_logits(run, images, tta=True, chunk=4), (plain + mirrored) / 2, rtol=1e-6
    )
    assert chunked_logits(run, images[:0]).shape[0] == 0


def test_an_unknown_export_target_names_the_extras_from_one_table():
    from fmnist_core.plugins import BUILT_IN_TARGETS, get_export_target

    with pytest.raises(BackendError, match="unknown export format 'nope'") as refused:
        get_export_target("nope")
    for extra, names in BUILT_IN_TARGETS.items():
        assert extra in refused.value.fix and all(name in refused.value.fix for name in names)
