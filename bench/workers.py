"""Data-parallel on this machine: steady epoch of 1 and 2 workers, both recipes, per backend.

    python bench/workers.py [--backends torch tf keras] [--models mlp cnn] [--workers 1 2]
                            [--epochs-mlp 3] [--epochs-cnn 4] [--option threads=1]

Each run is ``fmnist train --workers N`` in its own process (torchrun for torch,
MultiWorkerMirroredStrategy with a TF_CONFIG per worker for tf and keras). The steady epoch is
the median of the epochs after the first; the wall time includes start-up and the launch.
Prints one JSON line per run and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(backend: str, model: str, workers: int, epochs: int, options: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        command = [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "train",
            "--backend",
            backend,
            "--model",
            model,
            "--epochs",
            str(epochs),
            "--workers",
            str(workers),
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ]
        for option in options:
            command += ["--option", option]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode:
            return {
                "backend": backend,
                "model": model,
                "workers": workers,
                "error": done.stderr.strip()[-300:],
            }
        seconds = [e["seconds"] for e in json.loads((out / "history.json").read_text())["epochs"]]
        accuracy = json.loads((out / "evaluation.json").read_text())["accuracy"]
    return {
        "backend": backend,
        "model": model,
        "workers": workers,
        "options": options,
        "epochs": epochs,
        "epoch_seconds": seconds,
        "steady_epoch": statistics.median(seconds[1:] or seconds),
        "wall_seconds": wall,
        "accuracy": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--epochs-mlp", type=int, default=3)
    parser.add_argument("--epochs-cnn", type=int, default=4)
    parser.add_argument(
        "--option", action="append", default=[], help="a backend option for every run"
    )
    args = parser.parse_args()
    rows = []
    for model in args.models:
        for backend in args.backends:
            for workers in args.workers:
                epochs = args.epochs_mlp if model == "mlp" else args.epochs_cnn
                row = run(backend, model, workers, epochs, args.option)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("\n| model | backend | workers | steady epoch (s) | wall (s) | epochs | test accuracy |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(
                f"| {r['model']} | {r['backend']} | {r['workers']} | failed: {r['error'][:80]} | | "
                "| |"
            )
        else:
            print(
                f"| {r['model']} | {r['backend']} | {r['workers']} | {r['steady_epoch']:.2f} | "
                f"{r['wall_seconds']:.1f} "
                f"| {r['epochs']} | {r['accuracy']:.4f} |"
            )


if __name__ == "__main__":
    main()
