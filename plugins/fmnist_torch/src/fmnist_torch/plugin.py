"""Registers the ``torch`` backend and the ``pth`` weight format (no torch import here)."""

from __future__ import annotations

from fmnist_core import Backend, EngineConfig, WeightFormat, hookimpl
from fmnist_core.weights import lazy


class TorchBackend(Backend):
    name = "torch"
    description = "PyTorch (CPU, or CUDA with device='cuda'/'auto')"
    priority = 30
    requires = ("torch", "torchvision")

    def create_engine(self, config: EngineConfig):
        from .engine import TorchEngine

        return TorchEngine(config)


PTH = WeightFormat(
    name="pth",
    description="PyTorch state_dict (the article's layout for the mlp, the built module's otherwise); loaded with weights_only=True",
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
