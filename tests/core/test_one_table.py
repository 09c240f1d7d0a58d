"""Issue 44's mechanisms in the core: one chunked_logits, export target names from the registry,
eject's frameworks from the plugins' ejection tables and layer texts from their lowering tables."""

import numpy as np
import pytest

from fmnist_core import (
    BackendError,
    ConfigError,
    Ejections,
    EjectionTable,
    Lowerings,
    LoweringTable,
    hookimpl,
    plugins,
)
from fmnist_core.engine import chunked_logits
from fmnist_core.engine.ejection import ejectable_frameworks, ejection_table


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


class ToyEjection:
    @hookimpl
    def fmnist_ejections(self):
        return [Ejections("toy", "tests.core.toy_ejection")]

    @hookimpl
    def fmnist_lowerings(self):
        return [Lowerings("toy", "tests.core.toy_ejection")]


@pytest.fixture
def toy_framework(request):
    manager = plugins.get_plugin_manager()
    plugin = ToyEjection()
    manager.register(plugin, name="toy-ejection")
    request.addfinalizer(lambda: manager.unregister(plugin))
    return plugin


def test_a_plugins_ejection_table_writes_its_framework_and_refuses_what_it_lacks(
    toy_framework, tmp_path
):
    """Eject's frameworks and the layer types each writes come from the registered tables."""
    from fmnist_core import Trainer
    from fmnist_core.apps.eject import eject
    from fmnist_core.cli import main

    assert "toy" in ejectable_frameworks()
    assert set(ejection_table("toy").writers) == {"Flatten", "Dense", "ReLU"}
    written = eject(Trainer(backend="numpy", model="mlp", verbose=0), ["toy"], tmp_path / "mlp")
    text = written[0].read_text()
    assert written == [tmp_path / "mlp" / "toy" / "mlp.py"]
    assert "self.fc1 = np.zeros((784, 20))" in text and "x = np.maximum(x, 0)" in text
    assert "def learning_rate(step: int)" in text  # the core's shared sections
    assert (tmp_path / "mlp" / "toy" / "initial.safetensors").is_file()
    with pytest.raises(ConfigError, match="cannot write layer type 'Conv2D' in Toy") as refused:
        eject(Trainer(backend="numpy", model="cnn", verbose=0), ["toy"], tmp_path / "cnn")
    assert "Flatten, Dense, ReLU" in str(refused.value) and not (tmp_path / "cnn").exists()
    assert main(["eject", "--model", "mlp", "--to", "toy", "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "toy" / "mlp.py").read_text() == text


def test_ejection_tables_refuse_two_writers_of_one_layer_or_program():
    first, second = LoweringTable("toy"), LoweringTable("toy")
    first.text("Dense")(lambda *args: None)
    second.text("Dense")(lambda *args: None)
    union = LoweringTable("toy")
    union.merged(first, "one.module")
    with pytest.raises(BackendError, match="'Dense' is written as text for backend 'toy' twice"):
        union.merged(second, "two.module")
    first, second = EjectionTable("toy"), EjectionTable("toy")
    first.program(lambda *args: {})
    second.program(lambda *args: {})
    union = EjectionTable("toy")
    union.merged(first, "one.module")
    with pytest.raises(BackendError, match="two plugins write the 'toy' program"):
        union.merged(second, "two.module")
    with pytest.raises(BackendError, match="not an EjectionTable for framework 'tf'"):
        Ejections("tf", "tests.core.toy_ejection").load()


def test_the_eject_tests_cover_every_built_in_layer_type():
    from fmnist_core.testing.eject import other_layers, unchecked_layer_types

    assert unchecked_layer_types() == set()
    assert {"GELU", "AvgPool2D", "Dropout", "GlobalAvgPool", "Residual"} <= {
        layer.kind for layer in other_layers().walk()
    }


def test_an_ejected_program_takes_the_first_batches_with_steps_per_epoch(toy_framework, tmp_path):
    """``steps_per_epoch``: the program's batches.npz holds each epoch's first batches and their
    draws as the core's loop takes them, and its schedule counts those steps."""
    import numpy as np

    from fmnist_core import Trainer
    from fmnist_core.apps.eject import eject
    from fmnist_core.engine.batching import epoch_permutation
    from fmnist_core.testing import synthetic_dataset

    data = synthetic_dataset(train=1000, test=100)
    trainer = Trainer(backend="numpy", model="mlp", data=data, epochs=2, batch_size=64,
                      steps_per_epoch=3, augment="flip", verbose=0)  # fmt: skip
    (program,) = eject(trainer, ["toy"], tmp_path / "mlp")
    assert "STEPS_PER_EPOCH = 3" in program.read_text()
    with np.load(program.parent / "batches.npz") as batches:
        assert batches["order"].shape == batches["flips"].shape == (2, 3 * 64)
        for epoch in (0, 1):
            whole = epoch_permutation(trainer.config.seed, epoch, 1000)
            np.testing.assert_array_equal(batches["order"][epoch], whole[: 3 * 64])
            made = trainer.augment.draws(trainer.config.seed, epoch, 1000, whole)
            np.testing.assert_array_equal(batches["flips"][epoch], made.flips[: 3 * 64])
