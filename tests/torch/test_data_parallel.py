"""Data-parallel training: torchrun workers on gloo follow the same batches as one process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fmnist_core.backend import shard


def fmnist(*args, check=True, **kwargs):
    out = subprocess.run([sys.executable, "-m", "fmnist_core.cli", *map(str, args)], capture_output=True, text=True,
                         timeout=600, **kwargs)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_shards_cover_the_batch():
    for batch, world in [(64, 2), (63, 2), (10, 3), (3, 3)]:
        pieces = [np.arange(batch)[shard(batch, r, world)] for r in range(world)]
        np.testing.assert_array_equal(np.concatenate(pieces), np.arange(batch))
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def per_step_losses(run: Path) -> np.ndarray:
    return np.array([p["batch_loss"] for p in json.loads((run / "history.json").read_text())["progress"]])


def test_two_workers_equal_one_process(tmp_path, real_data_dir):
    common = ["--backend", "torch", "--epochs", "1", "--log-every", "1", "--no-plots", "--quiet",
              "--data-dir", real_data_dir]
    fmnist("train", *common, "--out", tmp_path / "one", "--option", "step=autograd")
    fmnist("train", *common, "--out", tmp_path / "two", "--workers", "2")
    one, two = per_step_losses(tmp_path / "one")[:100], per_step_losses(tmp_path / "two")[:100]
    relative = np.abs(one - two) / one
    print(f"2 workers vs 1 process, first 100 steps: max relative loss difference {relative.max():.2e}")
    assert relative.max() <= 1e-4
    accuracy = [json.loads((tmp_path / r / "evaluation.json").read_text())["accuracy"] for r in ("one", "two")]
    assert abs(accuracy[0] - accuracy[1]) <= 0.001
    assert json.loads((tmp_path / "two" / "config.json").read_text())["workers"] == 2


def worker_pids(run: Path) -> dict[int, int]:
    """rank → pid of the fmnist workers training into ``run``."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            env = dict(item.split(b"=", 1) for item in (proc / "environ").read_bytes().split(b"\0") if b"=" in item)
        except (OSError, ValueError):
            continue
        if b"fmnist_core.cli" in command and str(run).encode() in command and b"RANK" in env and b"LOCAL_RANK" in env:
            found[int(env[b"RANK"])] = int(proc.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the workers")
def test_killed_worker_stops_the_run_and_resume_finishes(tmp_path, real_data_dir):
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "fmnist_core.cli", "train", "--backend", "torch", "--workers", "2",
                                 "--epochs", "6", "--model", "mlp", "--optimizer", "adam", "--lr", "0.001", "--out", str(run),
                                 "--no-plots", "--quiet", "--data-dir", str(real_data_dir)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (run / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.2)
    pids = worker_pids(run)
    assert set(pids) == {0, 1}, pids
    os.kill(pids[1], signal.SIGKILL)
    killed = time.time()
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0 and time.time() - killed < 60
    assert "fmnist: error: a worker of 2 failed" in err
    from fmnist_core import Trainer

    resumed = Trainer.resume(run, verbose=0)  # the checkpoint is whole
    assert 1 <= resumed._start_epoch < 6
    fmnist("train", "--resume", run, "--workers", "2", "--quiet", "--no-plots", "--data-dir", real_data_dir)
    assert len(json.loads((run / "history.json").read_text())["epochs"]) == 6


def test_backend_without_data_parallel_is_refused(real_data_dir):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    out = fmnist("train", "--backend", "numpy", "--data-dir", real_data_dir, check=False, env=env)
    assert out.returncode == 1 and "backend 'numpy' does not train data-parallel" in out.stderr
    out = fmnist("train", "--backend", "numpy", "--workers", "2", "--data-dir", real_data_dir, check=False)
    assert out.returncode == 1 and "does not train data-parallel" in out.stderr
