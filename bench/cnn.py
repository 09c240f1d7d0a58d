"""The ``cnn`` recipe on every installed backend against the same CNN written by hand.

    python bench/cnn.py [--seeds 0 1 2] [--programs fmnist-torch torch-by-hand ...] [--device cuda]

Hand-written baselines: plain PyTorch (``nn.Module`` + ``torch.optim.Adam`` + ``OneCycleLR``)
and Keras' own ``compile``/``fit`` (Adam + the same one-cycle rates), same architecture, batch
and epochs. Each run is its own process; prints one JSON line per run and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DEVICE = os.environ.get("FMNIST_BENCH_DEVICE", "cpu")
EPOCHS = int(os.environ.get("FMNIST_BENCH_EPOCHS", "0")) or None  # None: the recipe's


def fmnist_run(backend: str, seed: int) -> dict:
    from fmnist_core import Trainer

    options = {"device": DEVICE} if backend.split("-")[0] in ("torch", "tf") else {}
    if (
        backend == "torch-cl"
    ):  # fmnist-torch-cl: channels-last convolutions (faster, leaves exact parity)
        backend, options = "torch", {**options, "channels_last": True}
    trainer = Trainer(backend=backend, model="cnn", seed=seed, verbose=0, epochs=EPOCHS, **options)
    started = time.perf_counter()
    history = trainer.fit()
    fit = time.perf_counter() - started
    return {
        "fit_seconds": fit,
        "epoch_seconds": history.column("seconds"),
        "accuracy": trainer.evaluate().accuracy,
    }


def torch_by_hand(seed: int) -> dict:
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional as F

    from fmnist_core import get_model, load_dataset

    recipe = get_model("cnn").recipe
    if EPOCHS:
        from dataclasses import replace

        recipe = replace(recipe, epochs=EPOCHS)
    torch.manual_seed(seed)
    data = load_dataset()
    x_train = torch.from_numpy(data.train.images.copy()).unsqueeze(1).float().div_(255)
    y_train = torch.from_numpy(data.train.labels.astype(np.int64))

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(o), nn.ReLU()]

    device = torch.device(DEVICE)
    x_train, y_train = x_train.to(device), y_train.to(device)
    model = nn.Sequential(*block(1, 16), *block(16, 32), nn.Flatten(), nn.Linear(32 * 49, 10)).to(
        device
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
    steps = recipe.epochs * -(-60000 // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.learning_rate, total_steps=steps
    )
    started, seconds = time.perf_counter(), []
    for _ in range(recipe.epochs):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(60000, device=device)
        for i in range(0, 60000, recipe.batch_size):
            rows = order[i : i + recipe.batch_size]
            loss = F.cross_entropy(model(x_train[rows]), y_train[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        seconds.append(time.perf_counter() - epoch_start)
    fit = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        logits = model(
            torch.from_numpy(data.test.images.copy()).unsqueeze(1).float().div_(255).to(device)
        )
    accuracy = float((logits.argmax(1).cpu().numpy() == data.test.labels).mean())
    return {"fit_seconds": fit, "epoch_seconds": seconds, "accuracy": accuracy}


def keras_by_hand(seed: int) -> dict:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from fmnist_tf.runtime import import_tensorflow, set_tensorflow_threads

    import_tensorflow()
    set_tensorflow_threads(1)
    import keras
    import numpy as np
    from fmnist_keras.lowering import build_model

    from fmnist_core import Schedule, get_model, load_dataset

    spec = get_model(os.environ.get("FMNIST_BENCH_MODEL", "cnn"))
    recipe = spec.recipe
    if EPOCHS:
        from dataclasses import replace

        recipe = replace(recipe, epochs=EPOCHS)
    keras.utils.set_random_seed(seed)
    data = load_dataset()
    per_epoch = -(-60000 // recipe.batch_size)
    total = recipe.epochs * per_epoch
    rates = Schedule("onecycle").rates(recipe.learning_rate, np.arange(total), per_epoch, total)

    class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return keras.ops.take(
                keras.ops.convert_to_tensor(rates.astype("float32")),
                keras.ops.minimum(step, total - 1),
            )

    model = build_model(spec, seed)
    model.compile(
        optimizer=keras.optimizers.Adam(OneCycle()),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    seconds = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    started = time.perf_counter()
    model.fit(
        data.train.images.astype("float32") / 255,
        data.train.labels.astype("int64"),
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        verbose=0,
        callbacks=[Timer()],
    )
    fit = time.perf_counter() - started
    logits = model.predict(data.test.images.astype("float32") / 255, verbose=0)
    return {
        "fit_seconds": fit,
        "epoch_seconds": seconds,
        "accuracy": float((logits.argmax(1) == data.test.labels).mean()),
    }


def child(name: str, seed: int) -> None:
    if name == "torch-by-hand":
        result = torch_by_hand(seed)
    elif name == "keras-fit":
        result = keras_by_hand(seed)
    else:
        result = fmnist_run(
            name.removeprefix("fmnist-"), seed
        )  # fmnist-torch, fmnist-torch-cl, fmnist-tf…
    print(json.dumps({"program": name, "seed": seed, **result}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--programs",
        nargs="+",
        default=["fmnist-torch", "torch-by-hand", "fmnist-tf", "fmnist-keras", "keras-fit"],
    )
    parser.add_argument("--child", nargs=2, metavar=("PROGRAM", "SEED"))
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda (torch programs; the output names the card)"
    )
    parser.add_argument(
        "--epochs", type=int, default=0, help="override the recipe's epochs (timing only)"
    )
    args = parser.parse_args()
    os.environ["FMNIST_BENCH_DEVICE"] = args.device
    if args.epochs:
        os.environ["FMNIST_BENCH_EPOCHS"] = str(args.epochs)
    if args.device.startswith("cuda") and not args.child:
        import torch

        print(f"device: {torch.cuda.get_device_name(0)}")
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    rows: dict[str, list[dict]] = {}
    for seed in args.seeds:
        for name in args.programs:
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, str(seed)],
                capture_output=True,
                text=True,
                env={**os.environ, "KERAS_BACKEND": "tensorflow"},
            )
            if out.returncode != 0:
                print(
                    f"{name} seed {seed} failed: {out.stderr.strip().splitlines()[-1:]}",
                    file=sys.stderr,
                )
                continue
            record = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(record), flush=True)
            rows.setdefault(name, []).append(record)
    print("\n| program | steady epoch s | fit s | test accuracy (mean of seeds) | seeds |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, records in rows.items():
        steady = statistics.median(s for r in records for s in r["epoch_seconds"][1:])
        fit = statistics.median(r["fit_seconds"] for r in records)
        accuracy = statistics.mean(r["accuracy"] for r in records)
        print(
            f"| {name} | {steady:.2f} | {fit:.1f} | {accuracy:.4f} | "
            f"{' '.join(str(r['seed']) for r in records)} |"
        )


if __name__ == "__main__":
    main()
