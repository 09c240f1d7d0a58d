"""The programs the benchmark runs, one per process: `python bench/programs.py NAME`.

Each prints one JSON line: epoch_seconds (list), train_seconds, test_accuracy. The article-style
programs follow the article's code (written here from its description) with only the fixes
today's libraries need, pointed at the local data instead of a download.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

EPOCHS, BATCH, LR = 5, 64, 0.1
DATA = Path(os.environ.get("FMNIST_DATA_DIR", "/usr/share/datasets/fashion-mnist"))


def report(epoch_seconds, train_seconds, accuracy, **extra):
    print(
        json.dumps(
            {
                "epoch_seconds": epoch_seconds,
                "train_seconds": train_seconds,
                "test_accuracy": float(accuracy),
                **extra,
            }
        ),
        flush=True,
    )


def arrays():
    from fmnist_core import load_dataset

    data = load_dataset(DATA)
    return data.train.images, data.train.labels, data.test.images, data.test.labels


# -- the article's PyTorch program -----------------------------------------------------------
def article_torch():
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    root = Path(os.environ.get("FMNIST_BENCH_ROOT", "/tmp/fmnist-bench-torchvision"))
    raw = root / "FashionMNIST" / "raw"
    if not (raw / "t10k-labels-idx1-ubyte").exists():  # torchvision reads the decompressed files
        raw.mkdir(parents=True, exist_ok=True)
        for gz in DATA.glob("*.gz"):
            with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
                shutil.copyfileobj(src, dst)

    training_data = datasets.FashionMNIST(
        root=str(root), train=True, download=False, transform=ToTensor()
    )
    test_data = datasets.FashionMNIST(
        root=str(root), train=False, download=False, transform=ToTensor()
    )
    train_dataloader = DataLoader(training_data, batch_size=BATCH, shuffle=True)
    test_dataloader = DataLoader(test_data, batch_size=BATCH, shuffle=True)

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.sequence = nn.Sequential(
                nn.Flatten(), nn.Linear(28 * 28, 20), nn.ReLU(), nn.Linear(20, 10)
            )

        def forward(self, x):
            return self.sequence(x)

    device = "cpu"
    model = NeuralNetwork().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    epoch_seconds = []
    started = time.perf_counter()
    for _ in range(EPOCHS):
        t0 = time.perf_counter()
        batch_count = len(train_dataloader)
        correct_item_count = current_item_count = 0
        for batch_index, (X, y) in enumerate(train_dataloader):
            X, y = X.to(device), y.to(device)
            y_prime = model(X)
            loss = loss_fn(y_prime, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct_item_count += (y_prime.argmax(1) == y).type(torch.int8).sum().item()
            batch_loss = loss.item()
            current_item_count += len(X)
            if (batch_index + 1) % 100 == 0 or (batch_index + 1) == batch_count:
                print(
                    f"[Batch {batch_index + 1:>3d} - {current_item_count:>5d} items] "
                    f"accuracy: {correct_item_count / current_item_count * 100:>0.1f}%, loss: "
                    f"{batch_loss:>7f}",
                    file=sys.stderr,
                )
        epoch_seconds.append(time.perf_counter() - t0)
    train_seconds = time.perf_counter() - started
    model.eval()
    correct = items = 0
    with torch.no_grad():
        for X, y in test_dataloader:
            correct += (model(X).argmax(1) == y).type(torch.int8).sum().item()
            items += len(X)
    report(epoch_seconds, train_seconds, correct / items)


def article_tf_data(tf):
    """The article's get_data for TensorFlow and Keras: a per-image map, batch(64).shuffle(500)."""
    train_x, train_y, test_x, test_y = arrays()
    train_dataset = tf.data.Dataset.from_tensor_slices((train_x, train_y))
    test_dataset = tf.data.Dataset.from_tensor_slices((test_x, test_y))
    # the article writes float(image); in a traced map that must be tf.cast
    train_dataset = train_dataset.map(
        lambda image, label: (tf.cast(image, tf.float32) / 255.0, label)
    )
    test_dataset = test_dataset.map(
        lambda image, label: (tf.cast(image, tf.float32) / 255.0, label)
    )
    return train_dataset.batch(BATCH).shuffle(500), test_dataset.batch(BATCH).shuffle(500)


# -- the article's low-level TensorFlow program ------------------------------------------------
def article_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    train_dataset, test_dataset = article_tf_data(tf)

    class NeuralNetwork(tf.Module):  # Keras 3 no longer tracks raw variables on a keras.Model
        def __init__(self):
            super().__init__()
            initializer = tf.keras.initializers.GlorotUniform()
            self.W1 = tf.Variable(initializer(shape=(784, 20)))
            self.b1 = tf.Variable(tf.zeros(shape=(20,)))
            self.W2 = tf.Variable(initializer(shape=(20, 10)))
            self.b2 = tf.Variable(tf.zeros(shape=(10,)))

        def __call__(self, x, training=False):
            x = tf.reshape(x, [-1, 784])
            x = tf.nn.relu(tf.matmul(x, self.W1) + self.b1)
            return tf.matmul(x, self.W2) + self.b2

    model = NeuralNetwork()
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.SGD(LR)

    @tf.function
    def fit_one_batch(X, y):
        with tf.GradientTape() as tape:
            y_prime = model(X, training=True)
            loss = loss_fn(y, y_prime)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))  # noqa: B905 (as the article)
        return y_prime, loss

    @tf.function
    def evaluate_one_batch(X, y):
        y_prime = model(X, training=False)
        return y_prime, loss_fn(y, y_prime)

    epoch_seconds = []
    started = time.perf_counter()
    for _ in range(EPOCHS):
        t0 = time.perf_counter()
        batch_count = len(train_dataset)
        correct_item_count = current_item_count = 0
        for batch_index, (X, y) in enumerate(train_dataset):
            y_prime, loss = fit_one_batch(X, y)
            y = tf.cast(y, tf.int64)
            correct_item_count += (tf.math.argmax(y_prime, axis=1) == y).numpy().sum()
            batch_loss = loss.numpy()
            current_item_count += len(X)
            if (batch_index + 1) % 100 == 0 or (batch_index + 1) == batch_count:
                print(
                    f"[Batch {batch_index + 1:>3d} - {current_item_count:>5d} items] "
                    f"accuracy: {correct_item_count / current_item_count * 100:>0.1f}%, loss: "
                    f"{batch_loss:>7f}",
                    file=sys.stderr,
                )
        epoch_seconds.append(time.perf_counter() - t0)
    train_seconds = time.perf_counter() - started
    correct = items = 0
    for X, y in test_dataset:
        y_prime, _ = evaluate_one_batch(X, y)
        correct += (tf.math.argmax(y_prime, axis=1).numpy() == y.numpy()).sum()
        items += len(X)
    report(epoch_seconds, train_seconds, correct / items)


# -- the article's Keras program -------------------------------------------------------------
def article_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    train_dataset, test_dataset = article_tf_data(tf)

    class NeuralNetwork(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.sequence = tf.keras.Sequential(
                [
                    tf.keras.layers.Flatten(input_shape=(28, 28)),
                    tf.keras.layers.Dense(20, activation="relu"),
                    tf.keras.layers.Dense(10),
                ]
            )

        def call(self, x):
            return self.sequence(x)

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.t0)

    model = NeuralNetwork()
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.SGD(LR)
    metrics = ["accuracy"]
    model.compile(optimizer, loss_fn, metrics=metrics)  # Keras 3 fix 1: metrics by keyword
    timer = EpochTimer()
    started = time.perf_counter()
    model.fit(train_dataset, epochs=EPOCHS, callbacks=[timer], verbose=2)
    train_seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(test_dataset, verbose=0)
    model.save("/tmp/fmnist-bench-article.keras")  # Keras 3 fix 2: a .keras name
    report(timer.seconds, train_seconds, test_accuracy)


# -- fmnist itself, through its command line ---------------------------------------------------
def fmnist_cli(backend):
    import tempfile

    from fmnist_core.cli import main

    with tempfile.TemporaryDirectory() as run:
        saved = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        try:
            main(["train", "--backend", backend, "--out", run, "--json", "--data-dir", str(DATA)])
        finally:
            sys.stdout.close()
            sys.stdout = saved
        history = json.loads(Path(run, "history.json").read_text())
        evaluation = json.loads(Path(run, "evaluation.json").read_text())
    seconds = [e["seconds"] for e in history["epochs"]]
    report(seconds, sum(seconds), evaluation["accuracy"])


PROGRAMS = {
    "article-torch": article_torch,
    "article-tf": article_tf,
    "article-keras": article_keras,
}

if __name__ == "__main__":
    name = sys.argv[1]
    if name.startswith("fmnist-"):
        fmnist_cli(name.removeprefix("fmnist-"))
    elif name.startswith("handwritten-") or name == "floor":
        from handwritten import run

        report(*run(name, arrays()))
    else:
        PROGRAMS[name]()
