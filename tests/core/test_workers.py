"""Which worker a process is (torchrun's RANK/WORLD_SIZE or TF_CONFIG), and the local launcher."""

import json
import os
import socket
import sys
import time

import pytest

from fmnist_core import ConfigError
from fmnist_core.workers import (
    free_ports,
    launch_local,
    port_in_use,
    tf_config_address,
    tf_config_rank,
    worker_rank,
)


def test_rank_from_torchrun_then_tf_config(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert worker_rank() == (0, 1)
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert worker_rank() == (2, 3) and tf_config_address(os.environ["TF_CONFIG"]) == "c:1"
    assert tf_config_address(json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})) == "a:1"
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert worker_rank() == (3, 4)  # torchrun's variables win
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK/WORLD_SIZE must be integers"):
        worker_rank()


@pytest.mark.parametrize("text, message", [
    ("not json", "TF_CONFIG is not a cluster and task"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is not a cluster and task"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task 'ps' 0 is not in its cluster"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}', "task 'worker' -1 is not in"),
])
def test_bad_tf_config(text, message):
    with pytest.raises(ConfigError, match=message):
        tf_config_rank(text)


def test_free_ports_and_port_in_use():
    ports = free_ports(3)
    assert len(set(ports)) == 3 and not any(port_in_use(p) for p in ports)
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        assert port_in_use(busy.getsockname()[1])


def test_launcher_stops_the_others_when_one_fails(monkeypatch, capsys, tmp_path):
    # worker 1 fails at once; worker 0 would sleep for a minute: the launcher stops it
    script = tmp_path / "fmnist_core_cli_stub.py"
    script.write_text("import os, sys, time\nif os.environ['R'] == '1': sys.exit(3)\ntime.sleep(60)\n")
    import fmnist_core.workers as workers

    monkeypatch.setattr(workers, "_command", lambda argv: [sys.executable, str(script)])
    started = time.time()
    code = launch_local([], 2, lambda rank: {"R": str(rank)}, grace=2)
    assert code == 3 and time.time() - started < 15
    assert "worker rank 1 of 2 exited with code 3; the other workers were stopped" in capsys.readouterr().err
    script.write_text("import sys\nsys.exit(0)\n")
    assert launch_local([], 2, lambda rank: {}, grace=2) == 0
