import numpy as np
import pytest

from fmnist_core import Callback, EarlyStopping, ModelCheckpoint, Trainer, TrainingError
from fmnist_core.engine.batching import epoch_blocks, epoch_permutation
from fmnist_core.errors import ConfigError
from fmnist_core.testing import synthetic_dataset


@pytest.fixture
def dataset():
    return synthetic_dataset(train=1000, test=100)


def test_epoch_blocks_cover_every_sample_once():
    order = epoch_permutation(0, 0, 1000)
    blocks = list(epoch_blocks(order, 64, 5))
    assert all(b.ndim == 2 for b in blocks)
    assert [b.shape for b in blocks] == [(5, 64), (5, 64), (5, 64), (1, 40)]
    np.testing.assert_array_equal(np.concatenate([b.ravel() for b in blocks]), order)


def test_block_size_is_independent_of_log_every(fake_backend, dataset):
    recorder = Recorder()
    trainer = Trainer(
        backend=fake_backend,
        data=dataset,
        epochs=1,
        batch_size=64,
        log_every=1,
        steps_per_execution=8,
        verbose=0,
        callbacks=[recorder],
    )
    trainer.fit()
    assert [c[1] for c in trainer.engine.calls[1:]] == [(8, 64), (7, 64), (1, 40)]
    assert [e for e in recorder.events if e.startswith("progress")] == [
        f"progress {i}/16" for i in range(1, 17)
    ]
    assert [r.loss for r in trainer.history.progress][:2] == pytest.approx([1.0, (1.0 + 0.5) / 2])


def test_permutation_depends_on_seed_and_epoch():
    a = epoch_permutation(0, 0, 100)
    np.testing.assert_array_equal(a, epoch_permutation(0, 0, 100))
    assert not np.array_equal(a, epoch_permutation(0, 1, 100))
    assert not np.array_equal(a, epoch_permutation(1, 0, 100))


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer):
        self.events.append("train_begin")

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(f"epoch_begin {epoch}")

    def on_progress(self, trainer, record, batches):
        self.events.append(f"progress {record.batch}/{batches}")

    def on_epoch_end(self, trainer, record):
        self.events.append(f"epoch_end {record.epoch}")

    def on_train_end(self, trainer, history):
        self.events.append("train_end")


def test_core_owns_loop_batching_and_callbacks(fake_backend, dataset):
    recorder = Recorder()
    trainer = Trainer(
        backend=fake_backend,
        data=dataset,
        epochs=2,
        batch_size=64,
        log_every=5,
        steps_per_execution=5,
        verbose=0,
        callbacks=[recorder],
    )
    history = trainer.fit()
    calls = trainer.engine.calls
    assert calls[0] == ("attach", (1000, 28, 28))
    # 15 full batches in blocks of at most 5 steps, then the 40-sample remainder, per epoch
    assert [c[1] for c in calls[1:5]] == [(5, 64), (5, 64), (5, 64), (1, 40)]
    assert recorder.events[:7] == [
        "train_begin",
        "epoch_begin 0",
        "progress 5/16",
        "progress 10/16",
        "progress 15/16",
        "progress 16/16",
        "epoch_end 0",
    ]
    assert recorder.events[-1] == "train_end"
    assert len(history) == 2 and history[0].items == 1000 and history[0].steps == 16


def test_loss_is_averaged_per_sample(fake_backend, dataset):
    trainer = Trainer(backend=fake_backend, data=dataset, epochs=1, batch_size=64, verbose=0)
    record = trainer.fit()[0]
    step_losses = 1.0 / np.arange(1, 17)
    sizes = np.array([64] * 15 + [40])
    assert record.loss == pytest.approx(
        float((step_losses.astype(np.float32) * sizes).sum() / 1000), rel=1e-6
    )
    assert record.accuracy == pytest.approx(float((dataset.train.labels % 2 == 0).mean()))


def test_nan_restores_epoch_start_weights(fake_backend, dataset):
    trainer = Trainer(
        backend=fake_backend,
        data=dataset,
        epochs=3,
        batch_size=64,
        verbose=0,
        log_every=4,
        steps_per_execution=4,
        nan_after=20,
    )
    with pytest.raises(TrainingError, match="epoch 2, batch 8") as info:
        trainer.fit()
    assert "lower the learning rate" in str(info.value)
    assert trainer.params["fc2.bias"][0] == pytest.approx(0.16)  # 16 steps of epoch 1
    assert len(trainer.history) == 1


def test_early_stopping_and_checkpoint(fake_backend, dataset, tmp_path):
    class Worse(Callback):
        def on_epoch_end(self, trainer, record):
            record.loss = float(record.epoch)  # never improves after epoch 0

    trainer = Trainer(
        backend=fake_backend,
        data=dataset,
        epochs=10,
        verbose=0,
        callbacks=[
            Worse(),
            EarlyStopping(patience=1),
            ModelCheckpoint(tmp_path / "e{epoch}.safetensors"),
        ],
    )
    history = trainer.fit()
    assert len(history) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "e1.safetensors",
        "e2.safetensors",
        "e3.safetensors",
    ]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"seed": -1}, "seed"),
        ({"epochs": 2.5}, "epochs"),
    ],
)
def test_bad_hyper_parameters(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        Trainer(backend="numpy", **kwargs)


def test_resume_equals_uninterrupted(dataset, tmp_path):
    full = Trainer(backend="numpy", data=dataset, epochs=4, verbose=0, seed=5)
    full.fit()
    part = Trainer(backend="numpy", data=dataset, epochs=2, verbose=0, seed=5)
    part.fit(checkpoint_dir=tmp_path)
    resumed = Trainer.resume(tmp_path, data=dataset, verbose=0)
    history = resumed.fit(epochs=4)
    assert history.metrics() == full.history.metrics()
    for name, value in full.params.items():
        np.testing.assert_array_equal(resumed.params[name], value)


def test_pad_block_keeps_one_shape():
    from fmnist_core.engine.batching import pad_block

    largest = [0, 0]
    block = np.arange(500).reshape(5, 100)
    rates = np.arange(5, dtype=np.float32)[:, None]
    padded, scalars, steps, batch = pad_block(block, rates, largest)
    assert padded is block and (steps, batch) == (5, 100)
    np.testing.assert_array_equal(scalars, rates)
    short = np.arange(200).reshape(2, 100)
    padded, scalars, steps, batch = pad_block(short, rates[:2], largest)
    assert padded.shape == (5, 100) and (steps, batch) == (2, 100)
    np.testing.assert_array_equal(padded[:2], short)
    np.testing.assert_array_equal(padded[2:], np.repeat(short[-1:], 3, axis=0))
    assert (
        scalars.shape == (5, 1)
        and scalars.dtype == np.float32
        and scalars[:, 0].tolist() == [0, 1, 1, 1, 1]
    )
    last = np.arange(32).reshape(1, 32)
    padded, scalars, steps, batch = pad_block(last, rates[:1], largest)
    assert padded.shape == (5, 100) and (steps, batch) == (1, 32) and scalars.shape == (5, 1)
    np.testing.assert_array_equal(padded[0, :32], last[0])
    assert set(padded[0, 32:]) == {0} and largest == [5, 100]


def test_article_progress_lines(fake_backend, dataset, capsys):
    Trainer(
        backend=fake_backend, data=dataset, epochs=1, batch_size=64, log_every=5, verbose=2
    ).fit()
    out = capsys.readouterr().out.splitlines()
    assert out[1:3] == ["Epoch 1", "-------------------------------"]
    assert (
        out[3].startswith("[Batch   5 -   320 items] accuracy: ") and ", loss: 0.200000" in out[3]
    )
    assert out[5].startswith("[Batch  15 -   960 items]") and out[6].startswith(
        "[Batch  16 -  1000 items]"
    )
    assert out[7].startswith("Epoch 1: loss ")


def test_progress_bar(fake_backend, dataset, capsys):
    Trainer(
        backend=fake_backend, data=dataset, epochs=2, batch_size=64, log_every=5, verbose=1
    ).fit()
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "16/16" in err and "accuracy=" in err


def test_steps_per_epoch_trains_the_first_batches_of_each_epochs_order(fake_backend, dataset):
    """Keras' steps_per_epoch: each epoch the first N batches of its seeded order; the
    schedule's length, progress and records count those steps, and the rest of the order is
    never gathered."""
    recorder = Recorder()
    trainer = Trainer(
        backend=fake_backend,
        data=dataset,
        epochs=2,
        batch_size=64,
        steps_per_epoch=7,
        steps_per_execution=5,
        log_every=5,
        verbose=0,
        callbacks=[recorder],
    )
    history = trainer.fit()
    assert [c[1] for c in trainer.engine.calls[1:]] == [(5, 64), (2, 64)] * 2
    assert [e for e in recorder.events if e.startswith("progress")] == [
        "progress 5/7",
        "progress 7/7",
    ] * 2
    assert [(r.steps, r.items) for r in history] == [(7, 7 * 64)] * 2
    assert trainer.config.steps_per_epoch == 7
    # more steps than an epoch has: the whole epoch
    whole = Trainer(backend=fake_backend, data=dataset, epochs=1, batch_size=64,
                    steps_per_epoch=1000, verbose=0)  # fmt: skip
    assert whole.fit()[0].steps == 16 and whole.fit()[0].items == 1000


def test_steps_per_epoch_with_a_schedule_resumes_as_uninterrupted(dataset, tmp_path):
    """A resumed run takes the same batches and draws as one that was not stopped, and a
    schedule's length is epochs × steps_per_epoch."""
    settings = dict(backend="numpy", data=dataset, verbose=0, seed=3, steps_per_epoch=4,
                    augment="flip,erase:0.5")  # fmt: skip
    full = Trainer(epochs=3, **settings)
    full.fit()
    part = Trainer(epochs=1, **settings)
    part.fit(checkpoint_dir=tmp_path)
    resumed = Trainer.resume(tmp_path, data=dataset, verbose=0)
    assert resumed.config.steps_per_epoch == 4
    assert resumed.fit(epochs=3).metrics() == full.history.metrics()
    assert [r.items for r in full.history] == [4 * full.config.batch_size] * 3
    cycle = Trainer(epochs=3, schedule="onecycle", **settings)
    cycle.fit()
    rates = cycle.loop().step_scalars(2, 3, 1)[0, 0]  # the last step: onecycle ends near zero
    assert rates < 0.01 * cycle.config.learning_rate
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        Trainer(backend="numpy", steps_per_epoch=0)
