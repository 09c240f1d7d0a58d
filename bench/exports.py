"""Every export format of mlp, cnn and fast in one run: size on disk, single-image latency and
batch throughput, each artifact run by its own runtime, beside fmnist's own torch engine.

    python bench/exports.py [--models mlp cnn fast] [--epochs 2] [--out DIR]

Each model is trained (torch, `--epochs` epochs of its recipe), then exported to every installed
format with the gate on (its scores are printed too). Latency: the median of 300 calls with one
image after 30 warm-up calls; throughput: the 10,000 test images in batches of 256, best of 3.
The web folder runs in a browser, so only its size is given. Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def latency_ms(run, image: np.ndarray, calls: int = 300) -> float:
    for _ in range(30):
        run(image)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        run(image)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def throughput(run, images: np.ndarray, batch: int = 256) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(0, len(images), batch):
            run(images[i : i + batch])
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "fast"])
    parser.add_argument("--formats", nargs="+", default=None, help="default: every installed")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", help="keep the exports here (default: a temporary folder)")
    args = parser.parse_args()
    from fmnist_core import Trainer, export_targets, load_dataset

    targets = [
        t
        for t in export_targets().values()
        if t.unavailable_reason() is None and (args.formats is None or t.name in args.formats)
    ]
    data = load_dataset()
    test = data.test.images
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out or scratch)
        print(f"CPU: {cpu_name()}, {len(targets)} formats, {', '.join(args.models)}\n")
        print(
            "| model | format | bytes on disk | 1 image, median ms | images/s (batches of 256) "
            "| same top-1 | largest prob. diff | test acc. |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for model in args.models:
            trainer = Trainer(model=model, backend="torch", epochs=args.epochs, data=data,
                              verbose=0)  # fmt: skip
            trainer.fit()
            source = lambda images, t=trainer: t.logits(images, tta=False)  # noqa: E731
            accuracy = (source(test).argmax(1) == data.test.labels).mean()
            print(
                f"| {model} | fmnist torch engine (source) | | {latency_ms(source, test[:1]):.3f} "
                f"| {throughput(source, test):,.0f} | | | {accuracy:.4f} |",
                flush=True,
            )
            for target in targets:
                result = trainer.export(
                    target.default_path(folder / model, model), format=target.name, gate=False
                )
                gate = result.gate
                scores = (
                    f"{gate.agreement:.2%} | {gate.max_probability_difference:.1g} | "
                    f"{gate.export_accuracy:.4f}"
                )
                if target.suffix.endswith("/"):
                    print(f"| {model} | {target.name} | {result.size_bytes:,} | (browser) | "
                          f"(browser) | {scores} |", flush=True)  # fmt: skip
                    continue
                run = target.load(result.path)
                print(
                    f"| {model} | {target.name} | {result.size_bytes:,} | "
                    f"{latency_ms(run, test[:1]):.3f} | {throughput(run, test):,.0f} | {scores} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
