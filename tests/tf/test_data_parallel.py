"""Data-parallel TensorFlow: MultiWorkerMirroredStrategy workers follow the same batches as one
process."""

import json
import os
import socket
import time

from fmnist_core.testing.data_parallel import DataParallelAcceptance, fmnist


class TestTFWorkers(DataParallelAcceptance):
    backend = "tf"
    # a killed worker ends the run and resume finishes it: tests-cluster's killed machine
    # (tests/cluster/test_multinode.py, TF_CONFIG as the README gives it) holds it for tf
    test_killed_worker_stops_the_run_and_resume_finishes = None


def tf_config(ports, index=0):
    return json.dumps(
        {
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.time()
        out = fmnist(
            "train",
            "--backend",
            "tf",
            "--epochs",
            "1",
            "--out",
            tmp_path / "run",
            check=False,
            env={**os.environ, "TF_CONFIG": tf_config([port, port + 1])},
        )
    assert out.returncode == 1 and time.time() - started < 60
    assert (
        f"port {port} of this worker's TF_CONFIG address 'localhost:{port}' (worker 0) is already "
        "in use" in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_malformed_tf_config_is_a_clear_error(tmp_path):
    out = fmnist(
        "train",
        "--backend",
        "tf",
        "--out",
        tmp_path / "run",
        check=False,
        env={
            **os.environ,
            "TF_CONFIG": '{"cluster": {"worker": ["localhost:1"]}, '
            '"task": {"type": "worker", "index": 3}}',
        },
    )
    assert out.returncode == 1 and "TF_CONFIG's task 'worker' 3 is not in its cluster" in out.stderr
    assert "Traceback" not in out.stderr


def test_workers_without_tf_config_are_refused(tmp_path):
    out = fmnist(
        "train",
        "--backend",
        "tf",
        "--out",
        tmp_path / "run",
        check=False,
        env={**os.environ, "WORLD_SIZE": "2", "RANK": "0"},
    )
    assert out.returncode == 1 and "2 workers asked for but TF_CONFIG is not set" in out.stderr


def test_xla_with_workers_on_the_cpu_is_refused(tmp_path):
    out = fmnist(
        "train",
        "--backend",
        "tf",
        "--workers",
        "2",
        "--option",
        "jit_compile=true",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        "--option",
        "device=cpu",
        check=False,
    )
    assert out.returncode == 1
    assert "jit_compile=True cannot run with workers on the CPU" in out.stderr
    assert "worker rank" in out.stderr and "Traceback" not in out.stderr
