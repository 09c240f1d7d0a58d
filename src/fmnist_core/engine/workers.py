"""Data-parallel workers, framework-free: which one this process is by torchrun's variables,
and launching N worker processes on this machine.

A backend may read its rank elsewhere (``Backend.worker_rank``: fmnist-tf reads ``TF_CONFIG``).
The core gives each rank its shard of every global batch (``fmnist_core.engine.batching.shard``);
the engines all-reduce.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from ..errors import BackendError, ConfigError


def worker_rank() -> tuple[int, int]:
    """(rank, world size) of this process: ``RANK``/``WORLD_SIZE`` as torchrun sets them, else
    (0, 1)."""
    if "WORLD_SIZE" in os.environ or "RANK" in os.environ:
        try:
            return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        except ValueError as exc:
            raise ConfigError(
                f"RANK/WORLD_SIZE must be integers, got {os.environ.get('RANK')!r}/"
                f"{os.environ.get('WORLD_SIZE')!r}",
                fix="unset them, or launch with torchrun",
            ) from exc
    return 0, 1


def peer_reason(message: str, fallback: str) -> str:
    """The line of a framework's collective error that says why (not a traceback's)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("File ", "Traceback"))]
    for pattern in (r"abort", r"reset|closed|refused|connection|timed? ?out|deadline|unavailable"):
        found = next((line for line in lines if re.search(pattern, line, re.IGNORECASE)), None)
        if found:
            return found
    return lines[0] if lines else fallback


def peer_failure(rank: int, world_size: int, reason: str) -> BackendError:
    """The one-line error of a worker whose collective failed because a peer stopped (killed,
    frozen past the timeout, or its machine gone): every data-parallel backend says it alike."""
    reason = re.sub(r"^\[[^\]]*\]\s*", "", " ".join(reason.split()))  # gloo's [file:line]
    return BackendError(
        f"worker rank {rank} of {world_size}: an all-reduce with the other workers failed "
        f"({reason[:200]})",
        fix="another worker stopped or cannot be reached: see its error, then --resume the run "
        "folder",
    )


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on localhost now (bound together, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_in_use(port: int) -> bool:
    """Whether this machine already has something listening on ``port``."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


def launch_local(
    argv: list[str], workers: int, env_for_rank: Callable[[int], dict[str, str]], grace: float = 5.0
) -> int:
    """Run ``python -m fmnist_core.cli ARGV`` as ``workers`` processes on this machine.

    Each gets ``env_for_rank(rank)`` added to its environment. When one exits non-zero (or is
    killed), the others are terminated (killed after ``grace`` seconds): a worker waiting in a
    collective for a dead peer would otherwise hang. Returns 0, or the first failure's exit
    code after printing which rank failed.
    """
    command = _command(argv)
    procs = [
        subprocess.Popen(command, env={**os.environ, **env_for_rank(rank)})
        for rank in range(workers)
    ]
    failed: tuple[int, int] | None = None
    try:
        while failed is None and any(p.poll() is None for p in procs):
            for rank, proc in enumerate(procs):
                if proc.poll() not in (None, 0):
                    failed = (rank, proc.returncode)
                    break
            time.sleep(0.2)
        if failed is None:
            failed = next(
                ((rank, p.returncode) for rank, p in enumerate(procs) if p.returncode), None
            )
    finally:
        _stop(procs, grace)
    if failed is None:
        return 0
    rank, code = failed
    cause = (
        f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    )
    print(
        f"fmnist: error: worker rank {rank} of {workers} {cause}; the other workers were stopped",
        file=sys.stderr,
    )
    return code if code > 0 else 1


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "fmnist_core.cli", *argv]


def _stop(procs: list[subprocess.Popen], grace: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
