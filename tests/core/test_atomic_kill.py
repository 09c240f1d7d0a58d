"""A process killed (SIGKILL) while saving leaves the previous weights intact and loadable."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from fmnist_core import Trainer, read_weights
from fmnist_core.testing import synthetic_dataset

SAVER = """
import sys
import numpy as np
from fmnist_core.io.formats import write_weights
from fmnist_core.io.weights import Weights
params = {"fc1.weight": np.full((784, 20), 2.0, np.float32), "fc1.bias": np.zeros(20, np.float32),
          "fc2.weight": np.full((20, 10), 2.0, np.float32), "fc2.bias": np.zeros(10, np.float32)}
print("ready", flush=True)
while True:
    write_weights(sys.argv[1], Weights("mlp", params))
"""


def test_sigkill_during_saves_keeps_a_loadable_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    first = Trainer(backend="numpy", data=synthetic_dataset(), verbose=0)
    first.save(path)
    for delay in (0.05, 0.13, 0.31):
        child = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        weights = read_weights(path)  # never a half-written file
        value = weights.params["fc1.weight"][0, 0]
        assert value == 2.0 or value == first.params["fc1.weight"][0, 0]
        assert np.all(np.isfinite(weights.params["fc2.weight"]))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "weights.safetensors"]
    assert all(name.endswith(".tmp") for name in leftovers)  # at most the killed writer's temp file
