"""Does translate TTA pay? (issue 43, item 3): ``fast`` trained with a validation split, its
validation accuracy with flip TTA against flip TTA and one-pixel shifts, the same weights.

    python bench/translate_tta.py --epochs 5 --seeds 0 1 2 [--precision bfloat16]
"""

from __future__ import annotations

import argparse

import numpy as np


def shifted(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``images`` moved ``dx`` pixels right and ``dy`` down, zeros coming in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def main() -> None:
    from fmnist_core import Trainer
    from fmnist_core.data import load_dataset, validation_indices

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()
    data = load_dataset()
    _, held = validation_indices(data.train.labels, 5000)
    x, y = data.train.images[held], data.train.labels[held]
    for seed in args.seeds:
        settings = dict(epochs=args.epochs, seed=seed, precision=args.precision, validation=5000)
        trainer = Trainer(backend=args.backend, model="fast", verbose=0, data=data, **settings)
        trainer.fit()
        flip = trainer.logits(x, tta=True)
        moved = [trainer.logits(shifted(x, dx, dy), tta=True)
                 for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]  # fmt: skip

        def accuracy(logits: np.ndarray) -> float:
            return float((logits.argmax(1) == y).mean())

        print(
            f"fast, {args.epochs} epochs, seed {seed}: flip {accuracy(flip):.4f}, "
            f"flip and ±1 px across {accuracy((flip + moved[0] + moved[1]) / 3):.4f}, "
            f"flip and ±1 px both ways {accuracy((2 * flip + sum(moved)) / 6):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
