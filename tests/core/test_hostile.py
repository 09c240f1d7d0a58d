"""Inputs built to hurt (issue 23): weight metadata of the wrong shape, absurd model specs,
files larger than they claim, poisoned caches, full and read-only disks, two writers of one run
folder. Each gives fmnist's one-line error (exit 1, no traceback) or correct work, with memory
bounded."""

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import ConfigError, ModelSpec, Trainer, WeightsError
from fmnist_core.io.formats import read_weights, write_weights
from fmnist_core.io.weights import Weights
from fmnist_core.testing import synthetic_dataset


def fmnist(*args, limit_mb: int | None = None, env: dict | None = None):
    """``fmnist ARGS`` in a child process (optionally under an address-space limit); returns
    (completed process, the child's peak RSS in MB)."""
    preexec = None
    if limit_mb:

        def preexec():
            resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))

    peak_file = tempfile.NamedTemporaryFile(delete=False)
    peak_file.close()
    try:
        out = subprocess.run(
            [sys.executable, "-c", _MEASURED_CLI, peak_file.name, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=preexec,
            env={**os.environ, **(env or {})},
        )
        text = Path(peak_file.name).read_text()
    finally:
        os.unlink(peak_file.name)
    return out, (int(text) / 1024 if text else float("inf"))


# the CLI, writing its own peak RSS (kB, VmHWM) at exit: RUSAGE_CHILDREN would be the peak of
# every child this test process has started, and a child's ru_maxrss starts at its parent's
_MEASURED_CLI = """
import atexit, re, runpy, sys
peak_file = sys.argv.pop(1)


def write_peak():
    status = open("/proc/self/status").read()
    open(peak_file, "w").write(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))


atexit.register(write_peak)
sys.argv[0] = "fmnist"
runpy.run_module("fmnist_core.cli", run_name="__main__")
"""


def one_line_error(out, *fragments):
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fmnist: error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def saved_mlp(tmp_path) -> Path:
    trainer = Trainer(backend="numpy", data=synthetic_dataset(), verbose=0, epochs=1)
    trainer.fit()
    return trainer.save(tmp_path / "w.safetensors")


# -- weight files and their metadata ----------------------------------------------------------


@pytest.mark.parametrize("config", ["[1]", '"x"', "5", "null", "{"])
def test_recorded_config_of_the_wrong_shape_is_ignored(tmp_path, config):
    weights = read_weights(saved_mlp(tmp_path))
    weights.metadata["config"] = config
    write_weights(tmp_path / "odd.safetensors", weights)
    loaded = Trainer.load(tmp_path / "odd.safetensors", verbose=0, data=synthetic_dataset())
    assert loaded.model.name == "mlp" and loaded.evaluate().accuracy > 0.3


@pytest.mark.parametrize(
    "architecture, message",
    [
        ("[1]", "a recorded architecture must be"),
        ('"x"', "a recorded architecture must be"),
        ("{" * 50_000 + "}" * 50_000, "not JSON"),
        (json.dumps({"name": "m", "layers": [{"type": ["Dense"]}]}), "unknown layer type"),
        (
            json.dumps(
                {
                    "name": "m",
                    "layers": [
                        {"type": "Flatten"},
                        {"type": "BatchNorm", "eps": "tiny"},
                        {"type": "Dense", "units": 10},
                    ],
                }
            ),
            "eps must be a number",
        ),
        (
            json.dumps(
                {
                    "name": "m",
                    "layers": [{"type": "Residual", "body": [{"type": "Residual", "body": []}]}],
                }
            ),
            "needs a body",
        ),
    ],
)
def test_recorded_architecture_of_the_wrong_shape_is_one_line(tmp_path, architecture, message):
    weights = Weights(
        "mine", {"fc1.weight": np.zeros((784, 10), np.float32)}, {"architecture": architecture}
    )
    write_weights(tmp_path / "odd.safetensors", weights)
    out, _ = fmnist("evaluate", tmp_path / "odd.safetensors")
    one_line_error(out, message)


def test_architecture_nested_beyond_the_limit(tmp_path):
    layer = {"type": "ReLU"}
    for _ in range(200):
        layer = {"type": "Residual", "body": [layer]}
    spec = tmp_path / "deep.json"
    spec.write_text(
        json.dumps({"name": "deep", "layers": [{"type": "Flatten"}, layer, {"type": "Dense"}]})
    )
    out, _ = fmnist("train", "--backend", "numpy", "--model", spec, "--out", tmp_path / "run")
    one_line_error(out, "nests layers more than 16 deep")


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            [{"type": "Flatten"}, {"type": "Dense", "units": 10**12}, {"type": "Dense"}],
            "would need about",
        ),
        (
            [
                {"type": "Conv2D", "filters": 8, "kernel": 100_000},
                {"type": "Flatten"},
                {"type": "Dense"},
            ],
            "would need about",
        ),
        (
            [{"type": "Flatten"}, {"type": "BatchNorm", "momentum": "x"}, {"type": "Dense"}],
            "momentum must be",
        ),
        ([{"type": "Flatten"}, {"type": "Dense", "units": 10, "bias": True}], "unexpected keyword"),
    ],
)
def test_absurd_model_files_fail_before_allocating(tmp_path, layers, message):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "absurd", "layers": layers}))
    out, peak = fmnist("train", "--backend", "numpy", "--model", spec, "--out", tmp_path / "run")
    one_line_error(out, message)
    assert peak < 600, f"peak RSS {peak:.0f} MB"


def test_model_file_that_is_not_text(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_bytes(b"\xff\xfe\x00garbage\x81")
    out, _ = fmnist("train", "--backend", "numpy", "--model", spec, "--out", tmp_path / "run")
    one_line_error(out, "is not UTF-8 text")


def test_the_memory_limit_can_be_raised():
    from fmnist_core import Dense, Flatten

    wide = ModelSpec("wide", [Flatten(), Dense(2_000_000), Dense(10)])
    with pytest.raises(
        ConfigError,
        match=r"would need about 25\.1 GiB.*1,590,000,010 parameters.*the limit is 8 GiB",
    ):
        Trainer(backend="numpy", model=wide, data=synthetic_dataset())
    assert (
        Trainer(backend="numpy", model=wide, data=synthetic_dataset(), max_memory_gb=64).model
        is wide
    )


def test_weights_file_larger_than_its_header_says(tmp_path):
    """The format's data must be covered exactly: bytes after the last tensor are refused from
    the header, before any tensor is read (here 6 GiB of holes)."""
    path = saved_mlp(tmp_path)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size + 6 * 2**30)
    out, peak = fmnist("evaluate", path, "--json", limit_mb=2048)
    one_line_error(out, "is not a safetensors weights file", "after the last tensor belong to none")
    assert peak < 1024, f"peak RSS {peak:.0f} MB"


@pytest.mark.parametrize("damage", ["overlap", "hole"])
def test_weights_file_whose_tensors_overlap_or_leave_holes(tmp_path, damage):
    path = saved_mlp(tmp_path)
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    tensors = sorted((k for k in header if k != "__metadata__"),
                     key=lambda k: header[k]["data_offsets"][0])  # fmt: skip
    first, second = header[tensors[0]], header[tensors[1]]
    body = bytes(data[8 + length :])
    if damage == "overlap":  # the second tensor starts 4 bytes inside the first
        size = second["data_offsets"][1] - second["data_offsets"][0]
        second["data_offsets"] = [first["data_offsets"][1] - 4, first["data_offsets"][1] - 4 + size]
        said = "overlaps the one before it"
    else:  # 4 unclaimed bytes between the first and the rest
        cut = first["data_offsets"][1]
        body = body[:cut] + b"\0" * 4 + body[cut:]
        for name in tensors[1:]:
            header[name]["data_offsets"] = [o + 4 for o in header[name]["data_offsets"]]
        said = "belong to no tensor"
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + body)
    with pytest.raises(WeightsError, match=said):
        read_weights(path)
    out, _ = fmnist("evaluate", path)
    one_line_error(out, "is not a safetensors weights file", said)


@pytest.mark.parametrize("damage", ["header length", "tensor range", "dtype", "shape"])
def test_weights_file_whose_header_lies(tmp_path, damage):
    path = saved_mlp(tmp_path)
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    if damage == "header length":
        data[:8] = (2**62).to_bytes(8, "little")
    else:
        entry = header["fc1.weight"]
        if damage == "tensor range":
            entry["data_offsets"][1] += 10**12
        elif damage == "dtype":
            entry["dtype"] = "ZZ9"
        else:
            entry["shape"] = [2**62, 2**62]
        raw = json.dumps(header).encode()
        data = bytearray(len(raw).to_bytes(8, "little")) + raw + data[8 + length :]
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="is not a safetensors weights file"):
        read_weights(path)
    out, _ = fmnist("evaluate", path)
    one_line_error(out, "is not a safetensors weights file")


# -- the data cache -----------------------------------------------------------------------------


def _cached(real_data_dir):
    from fmnist_core.data.dataset import cache_paths, load_dataset, locate

    load_dataset(real_data_dir)  # fills the cache
    return cache_paths(locate(real_data_dir)[1])


@pytest.mark.parametrize("poison", ["int64 labels", "label 200"])
def test_a_poisoned_cache_heals(real_data_dir, poison):
    from fmnist_core.data.dataset import load_dataset

    cached = _cached(real_data_dir)
    labels = np.load(cached["t10k-labels-idx1-ubyte"])
    np.save(
        cached["t10k-labels-idx1-ubyte"],
        labels.astype(np.int64) if poison == "int64 labels" else np.full_like(labels, 200),
    )
    data = load_dataset(real_data_dir)  # rebuilt from the verified files
    assert data.test.labels.dtype == np.uint8 and int(data.test.labels.max()) == 9
    assert np.load(cached["t10k-labels-idx1-ubyte"]).dtype == np.uint8


def test_cache_check_finds_overwritten_pixels(real_data_dir):
    from fmnist_core.data.dataset import load_dataset, verify_cache

    cached = _cached(real_data_dir)
    images = np.load(cached["t10k-images-idx3-ubyte"])
    assert all(v == "ok" for v in verify_cache(real_data_dir).values())
    np.save(cached["t10k-images-idx3-ubyte"], np.full_like(images, 255))  # header intact
    report = verify_cache(real_data_dir)
    assert report["t10k-images-idx3-ubyte"].startswith("did not match its digest")
    assert np.array_equal(load_dataset(real_data_dir).test.images, images)
    assert all(v == "ok" for v in verify_cache(real_data_dir).values())


# -- disks that fail, folders that are shared ---------------------------------------------------


@pytest.fixture
def small_mount(tmp_path):
    """A 100 kB tmpfs (root only; skipped with the reason elsewhere): the mlp's checkpoint fits,
    its checkpoint and weights together do not."""
    folder = tmp_path / "mnt"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(folder)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()[:120]}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_full_disk_is_one_line_and_the_checkpoint_stays_whole(small_mount, real_data_dir):
    run = small_mount / "run"
    out, _ = fmnist(
        "train",
        "--backend",
        "numpy",
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--data-dir",
        real_data_dir,
        "--out",
        run,
    )
    one_line_error(out, "cannot write", "No space left on device", "intact")
    assert not list(run.glob(".*.tmp"))  # no temporary file left behind
    resumed = Trainer.resume(run, verbose=0, data_dir=real_data_dir)  # the checkpoint is whole
    assert resumed.epochs_done == 1


def test_read_only_run_folder_is_one_line(small_mount, real_data_dir):
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    out, _ = fmnist(
        "train",
        "--backend",
        "numpy",
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--data-dir",
        real_data_dir,
        "--out",
        small_mount / "run",
    )
    one_line_error(out, "cannot write", "read-only")


def test_a_run_folder_has_one_writer(tmp_path, real_data_dir):
    from fmnist_core.atomic import folder_lock

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.mkdir()
        (run / ".fmnist.lock").write_text(str(holder.pid))
        out, _ = fmnist(
            "train",
            "--backend",
            "numpy",
            "--epochs",
            "1",
            "--no-plots",
            "--quiet",
            "--data-dir",
            real_data_dir,
            "--out",
            run,
        )
        one_line_error(out, f"is being written by process {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its stale lock is taken over, and released at the end
    out, _ = fmnist(
        "train",
        "--backend",
        "numpy",
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--data-dir",
        real_data_dir,
        "--out",
        run,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (run / ".fmnist.lock").exists()
    with folder_lock(run), folder_lock(run):  # one process may take it again
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from fmnist_core.atomic import folder_lock\nwith folder_lock({str(run)!r}): pass",
            ],
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and f"being written by process {os.getpid()}" in other.stderr


def _broken_layer(rule):
    from dataclasses import dataclass
    from typing import ClassVar

    from fmnist_core import Layer

    @dataclass(frozen=True)
    class Broken(Layer):
        kind: ClassVar[str] = "Broken"

        def output_shape(self, shape):
            return rule(shape)

    return Broken()


@pytest.mark.parametrize(
    "rule, said",
    [
        (lambda shape: shape[7], "the shape rule of layer type 'Broken' (tests.core.test_hostile) "
         "failed: IndexError"),
        (lambda shape: {}["x"], "failed: KeyError"),
        (lambda shape: [28, 28, 1], "returned '[28, 28, 1]', not a shape"),
        (lambda shape: None, "returned 'None', not a shape"),
        (lambda shape: ("28", 28, 1), "not a shape"),
        (lambda shape: (True,), "not a shape"),
    ],
)  # fmt: skip
def test_a_third_party_shape_rule_that_breaks_is_one_line(rule, said):
    from fmnist_core import Dense, Flatten

    with pytest.raises(ConfigError, match="Broken") as raised:
        ModelSpec("m", [_broken_layer(rule), Flatten(), Dense(10)])
    message = str(raised.value)
    assert said in message and "\n" not in message and "model 'm', layer 1" in message


@pytest.mark.parametrize("command", ["save", "convert"])
def test_a_write_target_that_is_a_folder_is_one_line_with_the_fix(tmp_path, command):
    path = saved_mlp(tmp_path)
    target = tmp_path / "taken.safetensors"
    target.mkdir()
    (target / "kept.txt").write_text("mine")
    if command == "save":
        from fmnist_core import StorageError

        with pytest.raises(StorageError, match="that is a folder") as raised:
            Trainer.load(path, verbose=0).save(target)
        assert ".tmp" not in str(raised.value) and str(target) in str(raised.value)
    else:
        out, _ = fmnist(command, path, target)
        one_line_error(out, f"cannot write {target}", "that is a folder")
        assert ".tmp" not in out.stderr
    assert (target / "kept.txt").read_text() == "mine" and len(list(tmp_path.glob(".*tmp"))) == 0


def test_tune_address_with_a_host_label_too_long_is_one_line():
    from fmnist_core.apps.tune import check_cluster

    with pytest.raises(ConfigError, match="is not a valid host name") as raised:
        check_cluster("a" * 70 + ".example:6379")
    assert "\n" not in str(raised.value)


def test_tune_address_of_a_silent_listener_is_reported_in_seconds():
    """Something listens at the address but is not Ray: reported after the probe's timeout
    (an HTTP/2 preface Ray's gRPC answers at once), not after Ray's 43 s of retries."""
    import socket

    from fmnist_core.apps.tune import check_cluster

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        with pytest.raises(ConfigError, match="does not answer as a Ray cluster's head") as raised:
            check_cluster(f"127.0.0.1:{listener.getsockname()[1]}", timeout=1.0)
        assert "no gRPC reply within 1 s" in str(raised.value)  # the probe's, not Ray's retries


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("name", ["checkpoint.safetensors", "weights.safetensors", ".fmnist.lock"])
def test_run_folder_files_that_are_fifos_or_devices(tmp_path, real_data_dir, name, kind):
    """Files of a run folder the user never named: a FIFO fed by nobody, or a link to
    /dev/zero. Weights and checkpoints are refused unopened (one line); a lock that fmnist
    did not write is replaced; nothing hangs (the child's timeout would fail the test)."""
    run = tmp_path / "run"
    first, _ = fmnist("train", "--backend", "numpy", "--epochs", "1", "--no-plots", "--quiet",
                      "--out", run, "--data-dir", real_data_dir)  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    (run / name).unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(run / name)
    else:
        (run / name).symlink_to("/dev/zero")
    out, peak = fmnist("train", "--resume", run, "--epochs", "2", "--no-plots", "--quiet",
                       "--data-dir", real_data_dir, limit_mb=4096)  # fmt: skip
    if name == ".fmnist.lock":
        assert out.returncode == 0, out.stderr[-2000:]
        assert (run / "weights.safetensors").is_file() and not (run / name).exists()
    elif name == "checkpoint.safetensors":
        one_line_error(out, "checkpoint.safetensors is not a regular file")
    else:  # the checkpoint is intact: resuming does not need the weights file
        assert out.returncode == 0, out.stderr[-2000:]
        assert (run / "weights.safetensors").is_file() and not (run / name).is_symlink()
    assert peak < 1024
    evaluated, _ = fmnist("evaluate", run / name, "--data-dir", real_data_dir)
    if (run / name).is_file():
        assert evaluated.returncode == 0
    else:
        assert evaluated.returncode == 1 and "Traceback" not in evaluated.stderr
