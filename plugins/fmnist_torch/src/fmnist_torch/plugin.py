"""Registers the ``torch`` backend, its lowering table, the ``pth`` weight format and the
``torch-export`` target (no torch import here)."""

from __future__ import annotations

from fmnist_core import (
    Backend,
    Ejections,
    EngineConfig,
    ExportTarget,
    Lowerings,
    Option,
    WeightFormat,
    hookimpl,
    load_on_call,
)


class TorchBackend(Backend):
    name = "torch"
    description = "PyTorch (CPU, or CUDA with device='cuda'/'auto')"
    priority = 30
    requires = ("torch", "torchvision")
    options = (
        Option(
            "device",
            str,
            "auto",
            "where to train: 'auto' takes a CUDA GPU when torch sees one, else the CPU",
            choices=("auto", "cpu", "cuda"),
            pattern=r"cuda:\d+",
        ),
        Option(
            "step",
            str,
            "fused",
            "'fused': a hand-written step for the article's MLP with plain SGD (else "
            "autograd); 'autograd': always autograd",
            choices=("fused", "autograd"),
        ),
        Option(
            "threads",
            int,
            None,
            "CPU threads for torch (default: 1 for small models such as "
            "the mlp, which measure no faster on more and slow down on busy cores; else torch's "
            "own)",
        ),
        Option(
            "tf32",
            bool,
            False,
            "TF32 CUDA matmuls and convolutions for speed (default: exact float32, the same "
            "numbers as the CPU and every backend); bfloat16 is the precision setting",
        ),
        Option(
            "channels_last",
            bool,
            None,
            "NHWC memory format for convolutions (default: on for models with Conv2D, faster: "
            "BENCHMARKS.md); its kernels sum in another order, within the tolerances of "
            "docs/weights-and-parity.md; False: NCHW, the exact path",
        ),
    )
    trains_data_parallel = True
    precisions = ("float32", "bfloat16")

    def launch_workers(self, argv: list[str], workers: int) -> int:
        """``torchrun --standalone --nproc-per-node N -m fmnist_core.cli ARGV`` (a free port)."""
        import subprocess
        import sys

        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={workers}",
            "--max-restarts=0",
            "--monitor-interval=0.5",
            "-m",
            "fmnist_core.cli",
            *argv,
        ]
        return subprocess.run(command).returncode

    def create_engine(self, config: EngineConfig):
        from .engine import TorchEngine

        return TorchEngine(config)


PTH = WeightFormat(
    name="pth",
    description="PyTorch state_dict (the article's layout for the mlp, the built module's "
    "otherwise); "
    "loaded with weights_only=True",
    suffixes=(".pth", ".pt"),
    read=load_on_call("fmnist_torch.formats", "read_pth"),
    write=load_on_call("fmnist_torch.formats", "write_pth"),
    plugin="fmnist_torch",
)


@hookimpl
def fmnist_backends():
    return [TorchBackend()]


@hookimpl
def fmnist_lowerings():
    return [Lowerings("torch", "fmnist_torch.lowering")]


@hookimpl
def fmnist_ejections():
    return [Ejections("torch", "fmnist_torch.ejection")]


@hookimpl
def fmnist_weight_formats():
    return [PTH]


TORCH_EXPORT = ExportTarget(
    name="torch-export",
    description="a torch.export program (.pt2): uint8 images in, logits out; run by "
    "torch.export.load(path).module()",
    suffix=".pt2",
    runtime="torch.export",
    write=load_on_call("fmnist_torch.exports", "write"),
    load=load_on_call("fmnist_torch.exports", "load"),
    read_metadata=load_on_call("fmnist_torch.exports", "read_metadata"),
    stamp=load_on_call("fmnist_torch.exports", "stamp"),
    plugin="fmnist_torch",
    requires=("torch",),
)


@hookimpl
def fmnist_export_targets():
    return [TORCH_EXPORT]
