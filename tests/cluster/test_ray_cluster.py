"""A two-node Ray cluster on this machine, started with the README's own commands (the head on
127.0.0.2, a second node on 127.0.0.3, Ray's token authentication), and the sweeps that run on
it: trials on both nodes, a stopped driver resumed, a node killed mid-trial, and the one-line
errors of a cluster that cannot be used. Every process a test starts, it stops."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fmnist_core.engine.workers import free_ports

from .readme import bash_block, swapped

ray = pytest.importorskip("ray", reason="needs fmnist-core[tune]")

HEAD, NODE = "127.0.0.2", "127.0.0.3"  # Ray turns 127.0.0.1 into the interface address
BIN = Path(sys.executable).parent


def readme_steps() -> dict[str, list[str]]:
    """The commands of the README's "On a Ray cluster" block: head, node, driver, stop."""
    lines = bash_block("### On a Ray cluster")
    commands = [shlex.split(line) for line in lines if not line.lstrip().startswith("#")]
    steps = {
        "head": next(c for c in commands if c[:3] == ["ray", "start", "--head"]),
        "node": next(c for c in commands if c[:3] == ["ray", "start", "--address"]),
        "driver": next(c for c in commands if c[:2] == ["fmnist", "tune"]),
        "stop": next(c for c in commands if c[:2] == ["ray", "stop"]),
    }
    assert any("RAY_AUTH_MODE=token" in line for line in lines)
    return steps


def localised(command: list[str], port: int, out: Path | None = None) -> list[str]:
    """The README's addresses and folder replaced by this machine's loopback ones."""
    swap = {"10.0.0.1": HEAD, "10.0.0.2": NODE, "6379": str(port), "/shared/sweeps/lr": str(out)}
    words = [swapped(word, swap) for word in command]
    if words[0] == "fmnist":
        return [sys.executable, "-m", "fmnist_core.cli", *words[1:]]
    return [str(BIN / words[0]), *words[1:]]


def session_pids(session: int) -> list[int]:
    """Every live process whose session is ``session`` (a node: all its ``ray start`` left)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if os.getsid(int(proc.name)) == session and state not in "ZX":
                    found.append(int(proc.name))
            except (OSError, IndexError):
                continue
    return found


def kill_session(session: int, sig: int = signal.SIGKILL, grace: float = 10.0) -> None:
    for pid in session_pids(session):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    deadline = time.time() + grace
    while session_pids(session) and time.time() < deadline:
        time.sleep(0.2)
    for pid in session_pids(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.time() + 10
    while session_pids(session) and time.time() < deadline:
        time.sleep(0.1)


@dataclass
class Cluster:
    port: int
    env: dict[str, str]
    sessions: dict[str, int]  # node address -> the session holding its processes
    temp: Path

    @property
    def address(self) -> str:
        return f"{HEAD}:{self.port}"

    def start(self, command: list[str], address: str) -> None:
        extra = ["--temp-dir", str(self.temp)] if "--head" in command else []
        if "--head" in command:
            client, dashboard = free_ports(2)
            extra += ["--ray-client-server-port", str(client), "--dashboard-port", str(dashboard)]
        started = time.time()
        proc = subprocess.Popen(
            [*command, *extra],
            env=self.env,
            start_new_session=True,  # the node's processes keep this session: one to stop
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.sessions[address] = proc.pid
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]
        assert f"Local node IP: {address}" in out, out[-2000:]
        print(f"ray start ({address}): {time.time() - started:.1f} s")

    def driver(self, *args: str, env: dict[str, str] | None = None, **kwargs):
        return subprocess.Popen(
            [sys.executable, "-m", "fmnist_core.cli", *args],
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def stop(self) -> None:
        for session in self.sessions.values():
            kill_session(session, signal.SIGTERM)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    steps = readme_steps()
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_AIR_NEW_OUTPUT": "0",
    }
    env.pop("RAY_ADDRESS", None)
    # a short folder: Ray's socket paths must stay under the 107-character limit of Unix sockets
    found = Cluster(port, env, {}, Path(tempfile.mkdtemp(prefix="fmr", dir="/tmp")))
    try:
        found.start(localised(steps["head"], port), HEAD)
        found.start(localised(steps["node"], port), NODE)
        yield found
    finally:
        found.stop()
        left = [pid for session in found.sessions.values() for pid in session_pids(session)]
        assert not left, f"Ray processes left running: {left}"


def trial_records(sweep: Path) -> dict[str, list[dict]]:
    """Ray Tune's own records of each trial (``result.json``: one line per report)."""
    records = {}
    for result in sweep.glob("trial-*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        records[result.parent.name] = lines
    return records


def finished(records: dict[str, list[dict]], epochs: int) -> list[str]:
    return [t for t, lines in records.items() if lines and lines[-1].get("epoch") == epochs]


def read_rows(sweep: Path) -> list[dict]:
    lines = (sweep / "sweep.csv").read_text().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, line.split(","), strict=True)) for line in lines[1:]]


def test_readme_sweep_runs_its_trials_on_both_nodes(cluster, tmp_path):
    command = localised(readme_steps()["driver"], cluster.port, tmp_path / "lr")
    started = time.time()
    out = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    records = trial_records(tmp_path / "lr")
    nodes = {t: {line["node_ip"] for line in lines} for t, lines in records.items()}
    print(f"README sweep on 2 nodes: {time.time() - started:.1f} s, trials by node {nodes}")
    assert len(records) == 4 and all(len(n) == 1 for n in nodes.values())
    assert set().union(*nodes.values()) == {HEAD, NODE}  # Ray's records: each node ran trials
    rows = read_rows(tmp_path / "lr")
    assert [r["status"] for r in rows] == ["done"] * 4
    for trial in records:
        for name in ("config.json", "history.json", "weights.safetensors"):
            assert (tmp_path / "lr" / trial / name).is_file()
    assert json.loads((tmp_path / "lr" / "best.json").read_text())["test_accuracy"] > 0.75


STEPS_PER_EPOCH = 300  # of an epoch's 860: what is tested is the sweep, not the training


def sweep_args(out: Path, rates: str, epochs: int, *extra: str) -> list[str]:
    return [
        "tune",
        "--address",
        f"{HEAD}:{{port}}",
        "--backend",
        "numpy",
        "--space",
        f"learning_rate=grid:{rates}",
        "--space",
        f"steps_per_epoch={STEPS_PER_EPOCH}",
        "--epochs",
        str(epochs),
        "--cpus-per-trial",
        "2",
        "--out",
        str(out),
        *extra,
    ]


def wait_for(condition, timeout: float, what: str, proc=None) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, f"{what}: the driver exited first"
        assert time.time() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.5)


def trained_to_the_end(sweep: Path, epochs: int) -> list[str]:
    """Trials whose fmnist history (written atomically each epoch by the trial itself, unlike
    Tune's buffered result files) holds every epoch."""
    done = []
    for history in sweep.glob("trial-*/history.json"):
        with contextlib.suppress(OSError, ValueError):
            if len(json.loads(history.read_text())["epochs"]) == epochs:
                done.append(history.parent.name)
    return done


def test_driver_stopped_mid_sweep_resumes_and_keeps_finished_trials(cluster, tmp_path):
    """Six trials, two at a time: when the first has trained to its end, two rounds are
    left, however fast the machine, so Ctrl-C comes mid-sweep by construction (the 3 s the
    test then waits are a fraction of a round: 20 short epochs a trial, some 6 s here)."""
    sweep = tmp_path / "resumed"
    rates = "0.05,0.1,0.15,0.2,0.25,0.3"
    epochs = 20
    args = [a.format(port=cluster.port) for a in sweep_args(sweep, rates, epochs)]
    driver = cluster.driver(*args)
    try:
        wait_for(lambda: trained_to_the_end(sweep, epochs), 300, "a finished trial", driver)
        time.sleep(3)  # Tune marks a trial finished once it has returned, after its last report
        assert driver.poll() is None, "the sweep ended before Ctrl-C"
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        stopped = time.time()
        _, err = driver.communicate(timeout=120)
        print(
            f"driver stopped by SIGINT: exit {driver.returncode} in {time.time() - stopped:.1f} s,"
            f" saying {err.strip().splitlines()[-1:]}"
        )
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert (
        driver.returncode == 1
        and "trials unfinished; fix: run the same command with --resume" in err
    )
    from ray.tune import ExperimentAnalysis

    # finished in the state Ray Tune saved (a trial that had reported its last epoch but not
    # yet returned is saved as pending, and --resume runs it again)
    saved = ExperimentAnalysis(str(sweep)).trials
    done_before = [f"trial-{t.trial_id}" for t in saved if t.status == "TERMINATED"]
    assert 1 <= len(done_before) < 6, [t.status for t in saved]
    kept = {t: (sweep / t / "weights.safetensors").read_bytes() for t in done_before}
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", *args, "--resume"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_rows(sweep)
    assert len(rows) == 6 and all(r["status"] == "done" for r in rows), rows
    assert sorted(finished(trial_records(sweep), epochs)) == sorted(r["trial"] for r in rows)
    for trial, weights in kept.items():  # finished trials were kept, not trained again
        assert (sweep / trial / "weights.safetensors").read_bytes() == weights


@pytest.mark.parametrize(
    "change, message",
    [
        ({"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN": None}, "its token is missing"),
        ({"RAY_AUTH_TOKEN": "0" * 64}, "its token is not the cluster's"),
        ({"port": "free"}, "no Ray cluster answers at 127.0.0.2:"),
        ({"port": "not-a-port"}, "is not HOST:PORT"),
    ],
)
def test_a_cluster_that_cannot_be_used_is_one_line(cluster, tmp_path, change, message):
    env = {k: v for k, v in cluster.env.items() if change.get(k, v) is not None}
    env.update({k: v for k, v in change.items() if v and k != "port"})
    port = {"free": str(free_ports(1)[0]), "not-a-port": "not-a-port"}.get(
        change.get("port"), str(cluster.port)
    )
    args = [a.format(port=port) for a in sweep_args(tmp_path / "s", "0.1", 1)]
    started = time.time()
    driver = cluster.driver(*args, env=env)
    _, err = driver.communicate(timeout=120)
    print(f"{message}: {time.time() - started:.1f} s: {err.strip()}")
    assert driver.returncode == 1 and message in err and err.count("\n") == 1, err[-2000:]
    assert time.time() - started < 60 and "Traceback" not in err


def test_another_ray_version_is_one_line(cluster):
    """The cluster's recorded versions (its GCS's), then other ones in their place."""
    script = f"""
import ray._common.usage.usage_lib as usage
from fmnist_core import ConfigError
from fmnist_core.apps.tune import check_cluster
assert check_cluster({cluster.address!r})["ray_version"] == {ray.__version__!r}
usage.get_cluster_metadata = lambda client: {{"ray_version": "2.9.0", "python_version": "3.10.1"}}
try:
    check_cluster({cluster.address!r})
except ConfigError as error:
    print(error)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"runs Ray 2\.9\.0 on Python 3\.10\.1, this driver Ray 2\.", out.stdout)
    assert "pip install ray[tune]==2.9.0" in out.stdout, out.stdout


def trial_running_in(session: int) -> bool:
    """A Ray worker of ``session`` (one node's processes) is running a trial now: its process
    title is Ray's ``ray::ImplicitFunc.train`` (an idle worker's is ``ray::IDLE``). Read from
    /proc, not from Tune's result files, which the driver writes in buffered chunks."""
    for pid in session_pids(session):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"ImplicitFunc.train" in title:
            return True
    return False


def test_a_node_killed_mid_trial_its_trial_is_retried_and_the_sweep_finishes(cluster, tmp_path):
    """Last in this module: it kills the second node. The node is killed once the test has
    seen a trial running there (each node holds one trial at a time, each trial 15 epochs),
    not after a race with Tune's result files."""
    sweep = tmp_path / "killed"
    epochs = 15
    args = [a.format(port=cluster.port) for a in sweep_args(sweep, "0.05,0.1,0.2,0.3", epochs)]
    driver = cluster.driver(*args, "--max-failures", "1")
    try:
        node = cluster.sessions[NODE]
        wait_for(lambda: trial_running_in(node), 300, "a trial running on the second node", driver)
        killed = time.time()
        kill_session(node)  # the whole node, as a machine that dies
        _, err = driver.communicate(timeout=600)
        print(f"node {NODE} killed mid-trial: sweep ended {time.time() - killed:.1f} s later")
        said = [line for line in err.splitlines() if re.search("died|[Ee]rror|[Ff]ail", line)]
        print("the driver's stderr said:", *said[:6], sep="\n  ")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, err[-3000:]
    rows = read_rows(sweep)
    assert len(rows) == 4 and all(r["status"] == "done" for r in rows), rows
    records = trial_records(sweep)
    assert sorted(finished(records, epochs)) == sorted(r["trial"] for r in rows)
    # Ray Tune's own record: the trial that was running on the killed node failed once and was
    # run again to the end (on the node that is left)
    from ray.tune import ExperimentAnalysis

    failures = {
        f"trial-{t.trial_id}": t.num_failures for t in ExperimentAnalysis(str(sweep)).trials
    }
    assert sorted(failures.values()) == [0, 0, 0, 1], failures
    victim = next(t for t, n in failures.items() if n == 1)
    assert records[victim][-1]["node_ip"] == HEAD  # retried on the node that is left
