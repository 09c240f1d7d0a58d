"""``Swish`` for fmnist-torch (imported only when a torch engine is built or a PyTorch program
ejected): its module, and its line in the program ``fmnist eject --to torch`` writes."""

from __future__ import annotations

import torch
from torch import nn

from fmnist_core import LoweringTable

LOWERINGS = LoweringTable("torch")


class SwishModule(nn.Module):
    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return x * torch.sigmoid(self.beta * x)


@LOWERINGS.layer("Swish")
def swish(layer, shape, ctx):
    return SwishModule(layer.beta)


@LOWERINGS.text("Swish")
def swish_text(layer, shape, lines, x):
    lines.forward(f"{x} = {x} * torch.sigmoid({layer.beta!r} * {x})")
