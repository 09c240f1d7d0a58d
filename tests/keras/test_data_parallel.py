"""Data-parallel Keras: on its TensorFlow backend through MultiWorkerMirroredStrategy (fmnist's own
step, not ``model.fit``); on torch and JAX a one-line refusal."""

import os

import pytest

from fmnist_core.testing.data_parallel import DataParallelAcceptance, fmnist

KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.skipif(
    KERAS_BACKEND != "tensorflow",
    reason="Keras trains data-parallel on its TensorFlow backend only",
)
class TestKerasWorkers(DataParallelAcceptance):
    backend = "keras"

    # the step, the strategy and the launcher are fmnist-tf's (fmnist_tf.runtime, .workers):
    # tests/tf holds the cnn's synchronised BatchNorm, tests-cluster a killed worker
    test_killed_worker_stops_the_run_and_resume_finishes = None
    test_cnn_two_workers_equal_one_process = None


@pytest.mark.skipif(
    KERAS_BACKEND == "tensorflow", reason="Keras on TensorFlow trains data-parallel"
)
def test_keras_on_torch_or_jax_refuses_workers(tmp_path):
    out = fmnist(
        "train",
        "--backend",
        "keras",
        "--workers",
        "2",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        check=False,
    )
    assert out.returncode == 1
    assert f"Keras on {KERAS_BACKEND!r} does not train data-parallel in fmnist" in out.stderr
