"""Registers the ``torch`` backend and the ``pth`` weight format (no torch import here)."""

from __future__ import annotations

from fmnist_core import Backend, EngineConfig, WeightFormat, hookimpl
from fmnist_core.weights import lazy


class TorchBackend(Backend):
    name = "torch"
    description = "PyTorch (CPU, or CUDA with device='cuda'/'auto')"
    priority = 30
    requires = ("torch", "torchvision")
    models = ("mlp",)

    def create_engine(self, config: EngineConfig):
        from .engine import TorchMLPEngine

        return TorchMLPEngine(config)


PTH = WeightFormat(
    name="pth",
    description="PyTorch state_dict in the article's layout (sequence.1.weight, ...); loaded with weights_only=True",
    suffixes=(".pth", ".pt"),
    read=lazy("fmnist_torch.formats", "read_pth"),
    write=lazy("fmnist_torch.formats", "write_pth"),
    plugin="fmnist_torch",
)


@hookimpl
def fmnist_backends():
    return [TorchBackend()]


@hookimpl
def fmnist_weight_formats():
    return [PTH]
