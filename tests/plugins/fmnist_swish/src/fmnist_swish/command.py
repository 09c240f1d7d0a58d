"""``fmnist swish``: the activation at a few points (a plugin's own command)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--beta", type=float, default=1.0)


def run(args) -> int:
    import numpy as np

    x = np.array([-2.0, 0.0, 2.0], np.float32)
    print("swish", " ".join(f"{v:.4f}" for v in x / (1 + np.exp(-args.beta * x))))
    return 0
