"""Speedrun III in the core: FLOPs counted from the layers, and the precision setting."""

import pytest

from fmnist_core import ConfigError, ModelSpec, Trainer, get_model
from fmnist_core.engine import precision as arithmetic
from fmnist_core.spec.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Residual,
)
from fmnist_core.testing import synthetic_dataset


def test_multiply_adds_are_counted_from_each_layers_shapes():
    assert Dense(10, name="fc").macs((20,)) == 200
    # 3×3 over 1 channel into 8, 'same' stride 2 on 28×28: 14×14 positions of 9·1·8
    assert Conv2D(8, 3, stride=2, name="c").macs((28, 28)) == 14 * 14 * 9 * 8
    assert BatchNorm(name="bn").macs((14, 14, 8)) == 0 and ReLU().macs((10,)) == 0
    block = Residual([Conv2D(16, 3, stride=2), ReLU(), Conv2D(16, 3)], name="res1")
    spec = ModelSpec("t", [Conv2D(8, 3), block, Flatten(), Dense(10)])
    body = 14 * 14 * 9 * 8 * 16 + 14 * 14 * 9 * 16 * 16
    projection = 14 * 14 * 8 * 16  # 1×1, stride 2, 8 → 16 channels
    assert spec.stack()[1][0].macs((28, 28, 8)) == body + projection
    assert spec.macs_by_kind() == {
        "Conv2D": 28 * 28 * 9 * 8 + body + projection,
        "Dense": 14 * 14 * 16 * 10,
    }


def test_training_flops_are_three_passes_but_the_first_layers_input_gradient():
    spec = ModelSpec("t", [Flatten(), Dense(20), ReLU(), Dense(10)])
    forward = 784 * 20 + 20 * 10
    assert spec.training_flops() == 2 * (3 * forward - 784 * 20)
    fast = get_model("fast")
    assert 11.0e6 < fast.training_flops() < 12.0e6  # issue 43 counted ~11.6 MFLOP by hand
    assert get_model("balanced").training_flops() == fast.training_flops()
    assert get_model("accurate").training_flops() > 5 * fast.training_flops()


def test_precision_auto_is_bfloat16_only_where_the_backend_and_the_cpu_have_it(monkeypatch):
    for flags, native in ((set(), False), ({"avx512f"}, False), ({"amx_bf16"}, True),
                          ({"avx512_bf16", "avx512f"}, True)):  # fmt: skip
        monkeypatch.setattr(arithmetic, "cpu_flags", lambda flags=flags: frozenset(flags))
        assert arithmetic.native_bfloat16() is native
        both = ("float32", "bfloat16")
        assert arithmetic.resolve_precision("auto", "x", both) == (
            "bfloat16" if native else "float32"
        )
        assert arithmetic.resolve_precision("auto", "numpy", ("float32",)) == "float32"
        assert arithmetic.resolve_precision("auto", "x", both, pays=False) == "float32"
        assert arithmetic.resolve_precision("bfloat16", "x", both) == "bfloat16"
        assert arithmetic.resolve_precision("float32", "x", both) == "float32"


def test_a_backend_without_bfloat16_refuses_it_in_one_line():
    with pytest.raises(ConfigError, match="numpy backend computes in float32 only") as refused:
        Trainer(backend="numpy", precision="bfloat16", data=synthetic_dataset(), verbose=0)
    assert "precision='float32'" in refused.value.fix
    with pytest.raises(ConfigError, match="precision must be one of"):
        Trainer(backend="numpy", precision="bf16", verbose=0)
    auto = Trainer(backend="numpy", precision="auto", data=synthetic_dataset(), verbose=0)
    assert auto.computes_in == "float32" and auto.recorded()["precision"] == "auto"


def test_a_recorded_precision_is_dropped_for_another_backend():
    """The setting is arithmetic, not the weights (float32): another backend loads them with
    its own (tests/torch: a bfloat16 run loads on NumPy), the same backend resumes with it."""
    from fmnist_core.training import checkpoints

    recorded = {"precision": "bfloat16", "epochs": 2}
    assert checkpoints.recorded_arguments(recorded, with_options=False) == {"epochs": 2}
    kept = checkpoints.recorded_arguments(recorded, with_options=True)
    assert kept["precision"] == "bfloat16"


def test_precision_is_a_flag_of_fmnist_train():
    from fmnist_core.cli import build_parser

    args = build_parser().parse_args(["train", "--precision", "auto"])
    assert args.precision == "auto"
    assert MaxPool2D(2).macs((28, 28, 4)) == 0


def test_training_sets_the_c_allocator_once_and_can_be_told_not_to():
    import subprocess
    import sys

    code = (
        "from fmnist_core import Trainer; from fmnist_core.testing import synthetic_dataset\n"
        "from fmnist_core.engine import allocator\n"
        "assert allocator._applied is None\n"
        "Trainer(backend='numpy', data=synthetic_dataset(), epochs=1, verbose=0).fit()\n"
        "print(allocator._applied)\n"
    )
    said = {}
    for opt_out in ("0", "1"):
        env = {**__import__("os").environ, "FMNIST_KEEP_MALLOC": opt_out}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-1000:]
        said[opt_out] = done.stdout.strip()
    glibc = sys.platform.startswith("linux") and __import__("platform").libc_ver()[0] == "glibc"
    assert said == {"0": str(glibc), "1": "False"}
