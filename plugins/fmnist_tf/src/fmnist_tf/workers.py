"""Data-parallel TensorFlow workers: the rank from ``TF_CONFIG`` and ``--workers N`` on this
machine. Framework-free (JSON and processes): importing it imports no TensorFlow, so the Keras
plugin can use it for its TensorFlow backend.

``MultiWorkerMirroredStrategy`` reads its cluster from ``TF_CONFIG``; the rank is the task's place
in it, ``chief`` first, then the ``worker`` tasks in order.
"""

from __future__ import annotations

import json
import os

from fmnist_core import ConfigError
from fmnist_core.plugin_api import free_ports, launch_local
from fmnist_core.plugin_api import worker_rank as torchrun_rank


def worker_rank() -> tuple[int, int]:
    """(rank, world size): torchrun's ``RANK``/``WORLD_SIZE`` when set, else the task of
    ``TF_CONFIG``, else (0, 1)."""
    if "WORLD_SIZE" in os.environ or "RANK" in os.environ or not os.environ.get("TF_CONFIG"):
        return torchrun_rank()
    return tf_config_rank(os.environ["TF_CONFIG"])


def tf_config_rank(text: str) -> tuple[int, int]:
    """(rank, world size) of the task in a ``TF_CONFIG`` JSON text (chief, then workers)."""
    chiefs, workers, kind, index = _tf_config_task(text)
    return (index if kind == "chief" else len(chiefs) + index), len(chiefs) + len(workers)


def tf_config_address(text: str) -> str:
    """The ``host:port`` of the task in a ``TF_CONFIG`` JSON text."""
    chiefs, workers, kind, index = _tf_config_task(text)
    return (chiefs if kind == "chief" else workers)[index]


def _tf_config_task(text: str) -> tuple[list[str], list[str], str, int]:
    """(chief addresses, worker addresses, task type, task index) of a ``TF_CONFIG``, checked."""
    fix = (
        'set TF_CONFIG to {"cluster": {"worker": ["host:port", ...]}, '
        '"task": {"type": "worker", "index": i}}'
    )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"TF_CONFIG is not a cluster and task: {text[:200]!r}", fix=fix) from exc
    if not 0 <= index < len({"chief": chiefs, "worker": workers}.get(kind, [])):
        raise ConfigError(
            f"TF_CONFIG's task {kind!r} {index} is not in its cluster {cluster}", fix=fix
        )
    return chiefs, workers, kind, index


class TensorFlowWorkers:
    """Mixin for a ``Backend`` that trains data-parallel through ``MultiWorkerMirroredStrategy``:
    ``class MyBackend(TensorFlowWorkers, Backend)``; ``--workers N`` starts N local processes,
    and the rank comes from ``TF_CONFIG``."""

    trains_data_parallel = True

    def launch_workers(self, argv: list[str], workers: int) -> int:
        return launch_tensorflow_workers(argv, workers)

    def worker_rank(self) -> tuple[int, int]:
        return worker_rank()


def launch_tensorflow_workers(argv: list[str], workers: int) -> int:
    """``launch_local`` with a ``TF_CONFIG`` per worker: a cluster of ``workers`` tasks on free
    localhost ports, as ``MultiWorkerMirroredStrategy`` reads it."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(workers)]}

    def env(rank: int) -> dict[str, str]:
        return {
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": rank}}
            ),
            "FMNIST_LOCAL_WORKERS": str(workers),
        }  # they share this machine's cores

    return launch_local(argv, workers, env)
