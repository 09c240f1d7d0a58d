"""fmnist-tf's workers: the rank from TF_CONFIG (chief first, then workers), torchrun's
variables first."""

import json
import os

import pytest
from fmnist_tf.workers import tf_config_address, tf_config_rank, worker_rank

from fmnist_core import ConfigError


def test_rank_from_torchrun_then_tf_config(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert worker_rank() == (0, 1)
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert worker_rank() == (2, 3) and tf_config_address(os.environ["TF_CONFIG"]) == "c:1"
    assert (
        tf_config_address(json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
        == "a:1"
    )
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert worker_rank() == (3, 4)  # torchrun's variables win
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK/WORLD_SIZE must be integers"):
        worker_rank()


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "TF_CONFIG is not a cluster and task"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is not a cluster and task"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
            "task 'ps' 0 is not in its cluster",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}',
            "task 'worker' -1 is not in",
        ),
    ],
)
def test_bad_tf_config(text, message):
    with pytest.raises(ConfigError, match=message):
        tf_config_rank(text)
