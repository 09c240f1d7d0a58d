"""Data-parallel training: torchrun workers on gloo follow the same batches as one process."""

import os
import subprocess
import sys

import numpy as np

from fmnist_core.engine.batching import shard
from fmnist_core.testing.data_parallel import DataParallelAcceptance


class TestTorchWorkers(DataParallelAcceptance):
    backend = "torch"  # the mlp with plain SGD: the fused step, its four gradients all-reduced
    cnn_step_tolerance = 5e-4  # channels_last convolutions (measured 2.1e-4)
    # a killed worker ends the run and resume finishes it: tests-cluster's killed machine
    # (tests/cluster/test_multinode.py, torchrun as the README runs it) holds it for torch
    test_killed_worker_stops_the_run_and_resume_finishes = None


class TestTorchAutogradWorkers(DataParallelAcceptance):
    backend = "torch"
    arguments = ("--option", "step=autograd")  # the generic step on the mlp
    test_cnn_two_workers_equal_one_process = None  # the cnn always takes it
    test_killed_worker_stops_the_run_and_resume_finishes = None  # Adam: the generic step already


def fmnist(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def test_shards_cover_the_batch():
    for batch, world in [(64, 2), (63, 2), (10, 3), (3, 3)]:
        pieces = [np.arange(batch)[shard(batch, r, world)] for r in range(world)]
        np.testing.assert_array_equal(np.concatenate(pieces), np.arange(batch))
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_backend_without_data_parallel_is_refused(real_data_dir):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    out = fmnist("train", "--backend", "numpy", "--data-dir", real_data_dir, env=env)
    assert out.returncode == 1 and "backend 'numpy' does not train data-parallel" in out.stderr
    out = fmnist("train", "--backend", "numpy", "--workers", "2", "--data-dir", real_data_dir)
    assert out.returncode == 1 and "does not train data-parallel" in out.stderr
