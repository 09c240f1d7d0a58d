"""``Swish`` as text in the PyTorch program ``fmnist eject --to torch`` writes."""

from __future__ import annotations

from fmnist_core import EjectionTable

EJECTION = EjectionTable("torch")


@EJECTION.layer("Swish")
def swish(layer, shape, lines, x):
    lines.forward(f"{x} = {x} * torch.sigmoid({layer.beta!r} * {x})")
