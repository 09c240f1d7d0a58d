"""`fmnist serve` under load, on 127.0.0.1 only: requests/s and latency per backend and per
export format.

    python bench/serve.py [--backends onnx torch] [--formats onnx-int8 torch-export litert]
                          [--clients 16] [--requests 50]

Trains the article's recipe once (NumPy), exports it to each format (`fmnist export`, gated), starts
`fmnist serve` for each backend and each exported file in its own process, then: single-image
requests from N concurrent clients (M each), and the 200-image `sample-request`-style batch (test
images 0-199) sent 20 times. Bounded: every loop has a fixed count and the servers are stopped at
the end.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(weights: Path, backend: str | None):
    port = free_port()
    chosen = ["--backend", backend] if backend else []
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fmnist_core.cli",
            "serve",
            str(weights),
            *chosen,
            "--port",
            str(port),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(url: str, images: list[bytes], clients: int, requests: int) -> dict:
    client = httpx.Client(timeout=60)

    def one(i: int) -> float:
        started = time.perf_counter()
        out = client.post(f"{url}/predict", files={"f": ("x.png", images[i % len(images)])})
        out.raise_for_status()
        return time.perf_counter() - started

    for i in range(20):
        one(i)  # warm-up
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        single = list(pool.map(one, range(clients * requests)))
    single_wall = time.perf_counter() - started
    files = [("files", (f"{i}.png", data)) for i, data in enumerate(images)]
    batch = []
    for _ in range(20):
        started = time.perf_counter()
        client.post(f"{url}/predict", files=files).raise_for_status()
        batch.append(time.perf_counter() - started)
    return {
        "single_rps": len(single) / single_wall,
        "single_p50_ms": 1000 * statistics.median(single),
        "single_p99_ms": 1000 * percentile(single, 0.99),
        "batch_p50_ms": 1000 * statistics.median(batch),
        "batch_p99_ms": 1000 * percentile(batch, 0.99),
        "batch_images_per_s": 200 / statistics.median(batch),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", nargs="+", default=["onnx", "torch"])
    parser.add_argument(
        "--formats", nargs="*", default=["onnx-int8", "torch-export", "litert"],
        help="export formats served from their files (those installed)",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    from fmnist_core import Trainer, export_targets, load_dataset
    from fmnist_core.data.images import save_samples

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data = load_dataset()
        trainer = Trainer(backend="numpy", data=data, verbose=0)
        trainer.fit()
        trainer.save(folder / "w.safetensors")
        images = [
            path.read_bytes()
            for path, _, _ in save_samples(data.test, folder / "samples", count=200)
        ]
        served = [(backend, folder / "w.safetensors", backend) for backend in args.backends]
        installed = export_targets()
        for name in args.formats:
            if name in installed and installed[name].unavailable_reason() is None:
                path = installed[name].default_path(folder, "w")
                trainer.export(path, format=name)
                served.append((f"{name} file", path, None))
        print(
            f"| served | single-image requests/s ({args.clients} clients) | p50 ms | p99 ms "
            "| 200-image batch p50 ms | p99 ms | images/s |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, path, backend in served:
            with server(path, backend) as url:
                r = measure(url, images, args.clients, args.requests)
            print(
                f"| {label} | {r['single_rps']:.0f} | {r['single_p50_ms']:.1f} | "
                f"{r['single_p99_ms']:.1f} "
                f"| {r['batch_p50_ms']:.1f} | {r['batch_p99_ms']:.1f} | "
                f"{r['batch_images_per_s']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
