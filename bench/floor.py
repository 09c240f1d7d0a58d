"""The compute floor: what a recipe's training must cost on this CPU, counted and measured.

    python bench/floor.py [--recipes mlp cnn fast balanced accurate] [--threads N]

For each recipe: its FLOPs per training image, counted from the spec's layers
(``ModelSpec.training_flops``: forward, weight and input gradients of every Dense and Conv2D),
and the rate at which this CPU runs each layer type's training work at the recipe's batch size
(torch, each layer forward and backward alone at its own shapes, channels-last, as fmnist-torch
runs it), in float32 and, where the CPU computes bfloat16 natively, under bfloat16 autocast. The
machine's peak is a 2048×2048 GEMM in each. "floor s/epoch" is an epoch's FLOPs at the layers'
own rates: the time no backend can beat without fewer FLOPs or narrower numbers. Speedrun tables
state every fit against these figures (``bench/speedrun.py`` imports ``gemm_peak``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN_IMAGES = 60_000


def _timed(step, seconds: float) -> float:
    """Seconds per call of ``step``: warmed up, then the best of several rounds of calls."""
    step()
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds / 4 or calls < 2:
        step()
        calls += 1
    per_round = max(1, calls)
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(per_round):
            step()
        best = min(best, (time.perf_counter() - began) / per_round)
    return best


def gemm_peak(dtype: str = "float32", size: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of a ``size``² matrix product in ``dtype`` ("float32" or "bfloat16")."""
    import torch

    kind = torch.float32 if dtype == "float32" else torch.bfloat16
    a = torch.randn(size, size).to(kind)
    b = torch.randn(size, size).to(kind)
    return 2 * size**3 / _timed(lambda: torch.mm(a, b), seconds) / 1e9


def layer_rates(spec, batch: int, precision: str, seconds: float = 0.5) -> dict[str, float]:
    """GFLOP/s of each weighted layer type's training work (forward, weight and input
    gradients: the input's left out for the first layer) at ``batch`` images, torch
    channels-last, ``precision`` "float32" or "bfloat16" (autocast)."""
    import contextlib

    import torch
    from torch import nn

    from fmnist_core.spec.layers import Conv2D, Dense

    def leaves(layers, shape):
        for layer in layers:
            if layer.children():
                yield from leaves(layer.children(), shape)
                projection = layer.shortcut(shape)
                if projection is not None:
                    yield projection, shape
            elif isinstance(layer, (Conv2D, Dense)):
                yield layer, shape
            shape = layer.output_shape(shape)

    def cast():
        if precision == "bfloat16":
            return torch.autocast("cpu", torch.bfloat16)
        return contextlib.nullcontext()

    flops: dict[str, float] = {}
    spent: dict[str, float] = {}
    shape0 = tuple(spec.input_shape)
    for index, (layer, shape) in enumerate(leaves(spec.layers, shape0)):
        shape = shape if len(shape) != 2 else (*shape, 1)
        first = index == 0
        if isinstance(layer, Conv2D):
            top, bottom, left, right = layer.pads(shape)
            module = nn.Sequential(
                nn.ZeroPad2d((left, right, top, bottom)),
                nn.Conv2d(shape[2], layer.filters, layer.kernel, layer.stride),
            ).to(memory_format=torch.channels_last)
            x = torch.randn(batch, shape[2], shape[0], shape[1]).to(
                memory_format=torch.channels_last
            )
        else:
            width = 1
            for size in shape:
                width *= size
            module = nn.Linear(width, layer.units)
            x = torch.randn(batch, width)
        x.requires_grad_(not first)

        def step(module=module, x=x):
            with cast():
                out = module(x)
            out.float().sum().backward()

        macs = layer.macs(shape)
        count = 2 * batch * macs * (2 if first else 3)
        flops[layer.kind] = flops.get(layer.kind, 0) + count
        spent[layer.kind] = spent.get(layer.kind, 0.0) + _timed(step, seconds)
    return {kind: flops[kind] / spent[kind] / 1e9 for kind in flops}


def floor_rows(recipes: list[str], precisions: list[str]) -> list[dict]:
    """One row per recipe and precision: FLOPs, the layers' rates, the floor of an epoch."""
    from fmnist_core import get_model

    rows = []
    for name in recipes:
        spec = get_model(name)
        per_image = spec.training_flops()
        by_kind = spec.macs_by_kind()
        for precision in precisions:
            rates = layer_rates(spec, spec.recipe.batch_size, precision)
            total_macs = sum(by_kind.values()) or 1
            seconds = sum(
                per_image * by_kind[kind] / total_macs * TRAIN_IMAGES / (rates[kind] * 1e9)
                for kind in by_kind
            )
            rows.append(
                {
                    "recipe": name,
                    "precision": precision,
                    "batch": spec.recipe.batch_size,
                    "mflop_per_image": per_image / 1e6,
                    "share": {k: v / total_macs for k, v in by_kind.items()},
                    "rates": rates,
                    "floor_epoch_seconds": seconds,
                    "epochs": spec.recipe.epochs,
                }
            )
    return rows


def table(rows: list[dict], peaks: dict[str, float], machine: str) -> str:
    peak_text = ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in peaks.items())
    lines = [
        f"Machine: {machine}. GEMM peak (2048², torch): {peak_text}.",
        "",
        "| recipe | precision | batch | MFLOP per training image | Conv2D GFLOP/s | "
        "Dense GFLOP/s | floor s/epoch | floor s, its schedule |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        rates = row["rates"]
        cells = [
            row["recipe"],
            row["precision"],
            str(row["batch"]),
            f"{row['mflop_per_image']:.2f}",
            f"{rates['Conv2D']:.0f} ({row['share']['Conv2D']:.0%})" if "Conv2D" in rates else "—",
            f"{rates['Dense']:.0f} ({row['share']['Dense']:.0%})" if "Dense" in rates else "—",
            f"{row['floor_epoch_seconds']:.2f}",
            f"{row['floor_epoch_seconds'] * row['epochs']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "In brackets: the layer type's share of the multiply-adds. Elementwise work (BatchNorm, "
        "ReLU, pooling, the optimizer update, augmentation) is not in the floor.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes", nargs="+", default=["mlp", "cnn", "fast", "balanced", "accurate"]
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    import torch

    from fmnist_core.engine.precision import native_bfloat16

    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    from run import machine

    precisions = ["float32", "bfloat16"] if native_bfloat16() else ["float32"]
    peaks = {p: gemm_peak(p) for p in precisions}
    print(table(floor_rows(args.recipes, precisions), peaks, machine()))


if __name__ == "__main__":
    main()
