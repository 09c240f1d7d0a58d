"""How closely each ejected program follows fmnist, step by step, for all five recipes on every
installed framework (the tests run mlp, fast and one network of the other layer types and
settings; ``CHECKED`` says why).

    python bench/eject.py [--recipes mlp cnn fast balanced accurate] [--frameworks torch tf keras]

For each: the relative loss difference at step 1, the largest over 20 steps and at which step,
and the largest share of the bound the tests hold it to (``fmnist_core.testing.eject.bound``).
A Markdown table on stdout, with the CPU it ran on: the later steps' figures depend on the CPU's
kernels (docs/weights-and-parity.md).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    from exports import cpu_name

    from fmnist_core.apps.eject import FRAMEWORKS, eject, installed
    from fmnist_core.data import load_dataset
    from fmnist_core.testing.eject import bound, fmnist_losses, run_ejected
    from fmnist_core.training.trainer import Trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["mlp", "cnn", "fast", "balanced",
                                                          "accurate"])  # fmt: skip
    parser.add_argument("--frameworks", nargs="+", default=[f for f in FRAMEWORKS if installed(f)])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    print(f"Ejected programs against fmnist, {args.steps} steps, on {cpu_name()}\n")
    print("| recipe | framework | step 1 | largest (step) | largest share of the bound |")
    print("| --- | --- | ---: | ---: | ---: |")
    for recipe in args.recipes:
        for framework in args.frameworks:
            with tempfile.TemporaryDirectory() as work:
                trainer = Trainer(backend="numpy", model=recipe, data=dataset, verbose=0)
                (program,) = eject(trainer, [framework], Path(work) / "out")
                theirs, _, _ = run_ejected(program, Path(args.data), args.steps)
            mine = fmnist_losses(recipe, framework, args.steps, data=dataset, steps_per_execution=5)
            gap = np.abs(np.subtract(theirs, mine)) / np.abs(mine)
            share = gap / np.array([bound(recipe, k) for k in range(1, args.steps + 1)])
            print(f"| {recipe} | {framework} | {gap[0]:.1e} | {gap.max():.1e} "
                  f"({int(gap.argmax()) + 1}) | {share.max():.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
