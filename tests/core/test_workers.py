"""Which worker a process is by torchrun's RANK/WORLD_SIZE, and the local launcher (TF_CONFIG's
ranks are fmnist-tf's: tests/tf/test_workers.py)."""

import socket
import sys
import time

import pytest

from fmnist_core import ConfigError
from fmnist_core.engine.workers import free_ports, launch_local, port_in_use, worker_rank


def test_rank_from_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert worker_rank() == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert worker_rank() == (3, 4)
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK/WORLD_SIZE must be integers"):
        worker_rank()


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
    script.write_text(
        "import os, sys, time\nif os.environ['R'] == '1': sys.exit(3)\ntime.sleep(60)\n"
    )
    import fmnist_core.engine.workers as workers

    monkeypatch.setattr(workers, "_command", lambda argv: [sys.executable, str(script)])
    started = time.time()
    code = launch_local([], 2, lambda rank: {"R": str(rank)}, grace=2)
    assert code == 3 and time.time() - started < 15
    assert (
        "worker rank 1 of 2 exited with code 3; the other workers were stopped"
        in capsys.readouterr().err
    )
    script.write_text("import sys\nsys.exit(0)\n")
    assert launch_local([], 2, lambda rank: {}, grace=2) == 0
