"""Sweeps on Ray Tune (``fmnist-core[tune]``): the same code on this machine and on a Ray cluster.

    fmnist tune --space learning_rate=loguniform:0.01:0.5 --space batch_size=choice:32,64,128 \\
                --num-samples 8 --epochs 2 --scheduler asha --out sweeps/lr
    fmnist_core.apps.tune.run_sweep({"learning_rate": ("loguniform", 0.01, 0.5)}, epochs=2,
                                    num_samples=8)

A space maps ``Trainer`` arguments (model, learning_rate, batch_size, optimizer, schedule,
epochs, backend, backend options…) to ``(kind, *args)``: ``choice``/``grid`` (values),
``uniform``/``loguniform`` (low, high), ``randint`` (low, high); a plain value is fixed. Every
trial is an ordinary fmnist run folder (config, history, weights, pictures) under the sweep
folder; trials report validation accuracy each epoch (ASHA stops the weak ones early); the best
trial alone is evaluated on the test set and its weights copied to the sweep folder.
"""

from __future__ import annotations

from .cluster import check_cluster
from .space import KINDS, METRIC, _trainer_arguments, check_space, load_space_file, parse_space
from .sweep import SweepResult, run_sweep

__all__ = [
    "KINDS",
    "METRIC",
    "SweepResult",
    "_trainer_arguments",
    "check_cluster",
    "check_space",
    "load_space_file",
    "parse_space",
    "run_sweep",
]
