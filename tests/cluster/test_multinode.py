"""Multi-node data-parallel training as two "machines" on 127.0.0.1, each its own launcher, with
the README's commands: torchrun's c10d rendezvous (--nnodes 2, a --node-rank each) and TensorFlow
workers given a two-machine TF_CONFIG. Both take the one-process steps; a killed "machine" ends
the other with fmnist's one-line error; --resume on both finishes the run."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fmnist_core.engine.workers import free_ports
from fmnist_core.testing.data_parallel import STEPS, accuracy_of, fmnist, per_step_losses

from .readme import bash_block, swapped

BIN = Path(sys.executable).parent
COMMON = ("--epochs", "1", "--steps-per-epoch", str(STEPS), "--log-every", "1", "--no-plots",
          "--quiet")  # fmt: skip
EPOCHS = 6  # the kill comes at the first checkpoint: five epochs of 200 steps still to run
LONG = ("--epochs", str(EPOCHS), "--steps-per-epoch", "200", "--optimizer", "adam", "--lr",
        "0.001", "--no-plots", "--quiet")  # fmt: skip


def readme_command(prefix: str) -> str:
    return next(line for line in bash_block("On several machines") if line.startswith(prefix))


def node_commands(backend: str, run: Path, extra: tuple[str, ...]) -> list[tuple[list, dict]]:
    """(argv, environment) of each of the two machines, the README's with loopback addresses."""
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"}  # gloo on loopback, never the interface
    if backend == "torch":
        (port,) = free_ports(1)
        line = readme_command("torchrun ").replace("10.0.0.1", "127.0.0.1")
        line = line.replace(":29500", f":{port}").replace("/shared/runs/dp", str(run))
        argv = shlex.split(line)
        argv[0] = str(BIN / "torchrun")
        rank = argv.index("--node-rank") + 1
        return [([*argv[:rank], str(r), *argv[rank + 1 :], *extra], env) for r in (0, 1)]
    ports = free_ports(2)
    line = readme_command("TF_CONFIG=")
    swap = {"10.0.0.1:12345": f"127.0.0.1:{ports[0]}", "10.0.0.2:12345": f"127.0.0.1:{ports[1]}"}
    line = swapped(line, swap)
    line = line.replace("/shared/runs/dp-tf", str(run))
    assignment, *argv = shlex.split(line)
    config = json.loads(assignment.split("=", 1)[1])
    commands = []
    for index in (0, 1):
        config["task"]["index"] = index
        commands.append(
            (
                [sys.executable, "-m", "fmnist_core.cli", *argv[1:], *extra],
                {**env, "TF_CONFIG": json.dumps(config)},
            )
        )
    return commands


def start(commands) -> list[subprocess.Popen]:
    machines = []
    for argv, env in commands:
        machines.append(
            subprocess.Popen(
                argv,
                env=env,
                start_new_session=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        if "--rdzv-endpoint" in argv and len(machines) == 1:
            # On a cluster only the endpoint's machine hosts torchrun's rendezvous store; on one
            # machine every launcher could, so the first is given the time to be the one.
            host, port = argv[argv.index("--rdzv-endpoint") + 1].rsplit(":", 1)
            deadline = time.time() + 60
            while True:
                try:
                    socket.create_connection((host, int(port)), timeout=1).close()
                    break
                except OSError:
                    assert time.time() < deadline and machines[0].poll() is None
                    time.sleep(0.2)
    return machines


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (torchrun starts its workers in sessions of their
    own, so a process group is not a machine)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(proc.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def kill_machine(machine: subprocess.Popen) -> None:
    """SIGKILL to the machine's launcher and everything it started, at once: a machine lost."""
    for pid in process_tree(machine.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def stop(machines: list[subprocess.Popen]) -> None:
    for machine in machines:
        if machine.poll() is None:
            kill_machine(machine)
        machine.communicate()


def succeed(machines: list[subprocess.Popen]) -> None:
    """Each machine's launcher exits 0 (within 10 minutes), and nothing of them is left."""
    try:
        for machine in machines:
            _, err = machine.communicate(timeout=600)
            assert machine.returncode == 0, err[-3000:]
    finally:
        stop(machines)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_two_machines_take_the_one_process_steps(backend, tmp_path):
    pytest.importorskip({"torch": "fmnist_torch", "tf": "fmnist_tf"}[backend])
    fmnist("train", "--backend", backend, *COMMON, "--out", tmp_path / "one")
    succeed(start(node_commands(backend, tmp_path / "two", COMMON)))
    one, two = per_step_losses(tmp_path / "one"), per_step_losses(tmp_path / "two")
    assert len(one) == len(two) == STEPS
    relative = np.abs(one - two) / one
    accuracies = accuracy_of(tmp_path / "one"), accuracy_of(tmp_path / "two")
    print(
        f"{backend}, 2 machines vs 1 process: max relative loss difference over {STEPS} steps "
        f"{relative.max():.2e}, test accuracy {accuracies[0]:.4f} / {accuracies[1]:.4f}"
    )
    assert relative.max() <= 1e-4
    assert abs(accuracies[0] - accuracies[1]) <= 0.001
    assert json.loads((tmp_path / "two" / "config.json").read_text())["workers"] == 2


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_a_killed_machine_ends_the_other_and_resume_finishes(backend, tmp_path):
    pytest.importorskip({"torch": "fmnist_torch", "tf": "fmnist_tf"}[backend])
    run = tmp_path / "run"
    machines = start(node_commands(backend, run, LONG))
    try:
        deadline = time.time() + 300
        while not (run / "checkpoint.safetensors").exists():
            assert all(m.poll() is None for m in machines) and time.time() < deadline
            time.sleep(0.2)
        kill_machine(machines[1])  # the second machine dies, all of it
        killed = time.time()
        _, err = machines[0].communicate(timeout=180)
        ended = time.time() - killed
    finally:
        stop(machines)
    lines = [line for line in err.splitlines() if line.startswith("fmnist: error:")]
    print(f"{backend}: the other machine ended {ended:.1f} s after the kill: {lines}")
    assert machines[0].returncode != 0 and ended < 60
    says = (
        r"^fmnist: error: worker rank \d of 2: an all-reduce with the other workers failed "
        r"\((?!File )[^;]*(reset|abort|closed|[Cc]onnection)"
    )
    assert len(lines) == 1 and re.search(says, lines[0]), err[-3000:]
    from fmnist_core import Trainer

    assert 1 <= Trainer.resume(run, verbose=0).epochs_done < EPOCHS  # the checkpoint is whole
    succeed(start(node_commands(backend, run, ("--resume", str(run), "--quiet", "--no-plots"))))
    assert len(json.loads((run / "history.json").read_text())["epochs"]) == EPOCHS
