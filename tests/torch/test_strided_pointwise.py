"""A strided 1×1 convolution, the shape of a Residual's projection shortcut: torch 2.14's oneDNN
takes a wrong weight gradient for it (two threads) or crashes the process (one thread) on CPUs
with AVX2 but no AVX-512, for 2-7 input channels in channels-last memory. fmnist-torch and Keras
on torch compute it as the strided pixels' 1×1 convolution; its gradients must be those of
torch's reference convolution (oneDNN switched off)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fmnist_core import Conv2D, Dense, Flatten, ModelSpec, Residual, Trainer

# switching oneDNN off for the reference warns about Intel GPUs
pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")


def reference_gradients(x, weight, bias, grad_out, stride):
    with torch.backends.mkldnn.flags(enabled=False):
        w, b = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        out = torch.nn.functional.conv2d(x.contiguous(), w, b, stride=stride)
        return torch.autograd.grad(out, [w, b], grad_out.contiguous())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("channels", [2, 4, 7, 16])
def test_the_projection_of_fmnist_torch_takes_the_reference_gradient(threads, channels):
    spec = ModelSpec(
        "projection",
        [Conv2D(channels, 3, stride=2), Residual([Conv2D(8, 3, stride=2)]), Flatten(), Dense(10)],
    )
    trainer = Trainer(backend="torch", model=spec, verbose=0, channels_last=True)
    projection = next(m for n, m in trainer.engine.model.named_modules() if n.endswith("proj"))
    assert projection.kernel_size == (1, 1) and projection.stride == (2, 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(channels)
        x = torch.randn(32, channels, 14, 14, generator=generator)
        x = x.contiguous(memory_format=torch.channels_last)
        grad_out = torch.randn(32, 8, 7, 7, generator=generator)
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        out = projection(x)
        mine = torch.autograd.grad(out, [projection.weight, projection.bias], grad_out)
    finally:
        torch.set_num_threads(previous)
    expected = reference_gradients(x, projection.weight, projection.bias, grad_out, 2)
    for got, want in zip(mine, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-3)
