"""How fmnist-torch builds each layer type, and writes it in an ejected program: ``LOWERINGS``,
its lowering table.

A builder is ``build(layer, shape, ctx) -> torch.nn.Module`` for an input of neutral ``shape``
(``(H, W, C)`` or ``(features,)``; torch's own tensors are NCHW). ``ctx`` is a ``BuildContext``:
the run's seed, the layer's place and ``ctx.stack(layers, shape)`` to build a nested stack.
Modules are named after the layers' local names, so the state_dict keys are the neutral names
(``conv1.weight``, ``res1.conv1.weight``); the ``layout`` conversions turn neutral tensors into
torch's (``Linear`` keeps ``(out, in)``, ``Conv2d`` ``(out, in, kh, kw)``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fmnist_core import LoweringTable
from fmnist_core.plugin_api import image_shape

LOWERINGS = LoweringTable("torch")
LOWERINGS.layout("dense", to_framework=lambda a: a.T, to_neutral=lambda a: a.T)
LOWERINGS.layout(
    "conv",
    to_framework=lambda a: a.transpose(3, 2, 0, 1),
    to_neutral=lambda a: a.transpose(2, 3, 1, 0),
)


@dataclass
class BuildContext:
    """What a builder may need besides its layer and input shape."""

    seed: int
    device: torch.device
    table: LoweringTable  # this one and every plugin's lowerings for torch
    index: int = 0  # the layer's place among all layers built so far (seeds Dropout)

    def stack(self, layers, shape) -> nn.Module:
        """A nested stack as one module whose children carry the layers' local names."""
        return SpecSequential(build_children(layers, shape, self))


def build_children(layers, shape, ctx: BuildContext) -> OrderedDict:
    """(local name → module) for ``layers`` from input ``shape``."""
    children = OrderedDict()
    for layer in layers:
        key = layer.name.rsplit(".", 1)[-1] if layer.name else f"{layer.kind.lower()}{ctx.index}"
        children[key] = ctx.table.builder(layer)(layer, shape, ctx)
        ctx.index += 1
        shape = layer.output_shape(shape)
    return children


def build_module(spec, seed: int, device: torch.device) -> nn.Module:
    """The ``torch.nn`` model of ``spec``: its state_dict keys are the neutral names."""
    from fmnist_core.plugin_api import lowering_table

    table = lowering_table("torch")  # this table and the plugins' lowerings for torch
    for layer in spec.walk():
        table.builder(layer)  # a missing lowering fails here, naming the layer type
    context = BuildContext(seed, device, table)
    return SpecSequential(build_children(spec.layers, spec.input_shape, context)).to(device)


class SpecSequential(nn.Sequential):
    """``nn.Sequential`` whose children are a spec's layers (named, in order)."""


def channels(shape) -> int:
    return image_shape(shape)[2] if len(shape) >= 2 else shape[0]


class ChannelsLastFlatten(nn.Module):
    """Flatten in the neutral (H, W, C) order: torch's NCHW is permuted first (no-op for C = 1)."""

    def forward(self, x):
        if x.dim() == 4 and x.shape[1] > 1:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)


@LOWERINGS.layer("Flatten")
def flatten(layer, shape, ctx):
    return ChannelsLastFlatten()


@LOWERINGS.layer("Dense")
def dense(layer, shape, ctx):
    return nn.Linear(shape[0], layer.units)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` that pads like TensorFlow's ``same`` when the padding is uneven."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pads = pads  # left, right, top, bottom

    def forward(self, x):
        return super().forward(F.pad(x, self.pads))


class StridedPointwiseConv2d(nn.Conv2d):
    """A 1×1 ``nn.Conv2d`` with a stride, computed as the strided pixels' 1×1 convolution (the
    same products). On AVX2-only CPUs, torch 2.14's oneDNN weight gradient of a strided 1×1
    convolution with 2-7 input channels in channels-last memory is wrong on two threads and
    crashes the process (SIGSEGV/SIGABRT) on one: a Residual's projection shortcut."""

    def forward(self, x):
        step_y, step_x = self.stride
        return F.conv2d(x[:, :, ::step_y, ::step_x], self.weight, self.bias)


@LOWERINGS.layer("Conv2D")
def conv2d(layer, shape, ctx):
    top, bottom, left, right = layer.pads(shape)
    if layer.kernel == 1 and layer.stride > 1:
        return StridedPointwiseConv2d(channels(shape), layer.filters, 1, layer.stride)
    if left == right and top == bottom:
        return nn.Conv2d(
            channels(shape), layer.filters, layer.kernel, layer.stride, padding=(top, left)
        )
    return SameConv2d(
        channels(shape), layer.filters, layer.kernel, layer.stride, pads=(left, right, top, bottom)
    )


@LOWERINGS.layer("MaxPool2D")
def max_pool(layer, shape, ctx):
    return nn.MaxPool2d(layer.pool, layer.step)


@LOWERINGS.layer("GlobalAvgPool")
def global_avg_pool(layer, shape, ctx):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


@LOWERINGS.layer("ReLU")
def relu(layer, shape, ctx):
    return nn.ReLU()


@LOWERINGS.layer("GELU")
def gelu(layer, shape, ctx):
    return nn.GELU()  # exact: erf


class SummedAcrossWorkers(torch.autograd.Function):
    """An all-reduce (sum) that autograd goes through: the gradient is summed likewise."""

    @staticmethod
    def forward(ctx, x):
        import torch.distributed as dist

        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class BiasedBatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (also for (N, C) input) whose running variance takes the *biased* batch
    variance, the neutral convention (Keras'); torch's own takes the unbiased one."""

    def _check_input_dim(self, input):
        if input.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input (got {input.dim()}D input)")

    synchronized = (
        False  # data-parallel: batch statistics over every worker's shard (set by the engine)
    )

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        if self.synchronized:
            return self._synchronized(x)
        # torch updates copies (autograd keeps them for the backward pass, so the buffers
        # themselves must not change under it); the biased variance is then (n-1)/n of its
        # unbiased one: running = new - (new - (1-m)·old)/n
        mean, var = self.running_mean.clone(), self.running_var.clone()
        out = F.batch_norm(x, mean, var, self.weight, self.bias, True, self.momentum, self.eps)
        count = x.numel() // x.shape[1]
        with torch.no_grad():
            self.running_mean.copy_(mean)
            self.running_var.copy_(var - (var - (1 - self.momentum) * self.running_var) / count)
            self.num_batches_tracked.add_(1)
        return out

    def _synchronized(self, x):
        # the statistics of the global batch: sums over every worker's shard in one all-reduce
        # (whose backward all-reduces the gradients), in float64 so that E[x²] - E[x]² loses
        # nothing against the one-process two-pass variance (measured 1.6e-7 apart)
        axes = [0, 2, 3] if x.dim() == 4 else [0]
        wide = x.double()
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64, device=x.device)
        sums = SummedAcrossWorkers.apply(
            torch.cat([wide.sum(axes), (wide * wide).sum(axes), count])
        )
        n_channels, total = x.shape[1], sums[-1]
        mean = sums[:n_channels] / total
        var = (sums[n_channels : 2 * n_channels] / total - mean * mean).clamp_min(0)
        view = [1, n_channels, 1, 1] if x.dim() == 4 else [1, n_channels]
        out = (x - mean.float().view(view)) * torch.rsqrt(var.float().view(view) + self.eps)
        out = out * self.weight.view(view) + self.bias.view(view)
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.float(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.float(), alpha=m)
            self.num_batches_tracked.add_(1)
        return out


@LOWERINGS.layer("BatchNorm")
def batch_norm(layer, shape, ctx):
    return BiasedBatchNorm(channels(shape), eps=layer.eps, momentum=layer.momentum)


class SeededDropout(nn.Module):
    """Inverted dropout drawing its masks from its own seeded generator."""

    def __init__(self, rate: float, seed: int, device: torch.device):
        super().__init__()
        self.rate = rate
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x
        keep = 1 - self.rate
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
        return x * mask / keep


@LOWERINGS.layer("Dropout")
def dropout(layer, shape, ctx):
    return SeededDropout(layer.rate, ctx.seed * 1000 + ctx.index, ctx.device)


@LOWERINGS.layer("AvgPool2D")
def avg_pool(layer, shape, ctx):
    return nn.AvgPool2d(layer.pool, layer.step)


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; the body's modules and the projection (``proj``) are children,
    so their tensors are named ``res1.conv1.weight``, ``res1.proj.weight``."""

    def __init__(self, body: OrderedDict, projection: nn.Module | None):
        super().__init__()
        for key, module in body.items():
            self.add_module(key, module)
        self.body = list(body)
        self.proj = projection

    def forward(self, x):
        y = x
        for key in self.body:
            y = self._modules[key](y)
        return y + (self.proj(x) if self.proj is not None else x)


@LOWERINGS.layer("Residual")
def residual(layer, shape, ctx):
    body = build_children(layer.body, shape, ctx)
    projection = layer.shortcut(shape)
    return ResidualBlock(
        body, ctx.table.builder(projection)(projection, shape, ctx) if projection else None
    )


# ---- each layer type as text in the program `fmnist eject --to torch` writes ----


@LOWERINGS.text("Flatten")
def flatten_text(layer, shape, lines, x):
    if len(shape) == 3 and shape[2] > 1:
        lines.forward(f"{x} = {x}.permute(0, 2, 3, 1).flatten(1)  # fmnist's (H, W, C) order")
    else:
        lines.forward(f"{x} = {x}.flatten(1)")


@LOWERINGS.text("Dense")
def dense_text(layer, shape, lines, x):
    lines.init(f"{lines.attribute(layer)} = nn.Linear({shape[0]}, {layer.units})")
    lines.forward(f"{x} = {lines.attribute(layer)}({x})")


@LOWERINGS.text("ReLU")
def relu_text(layer, shape, lines, x):
    lines.forward(f"{x} = F.relu({x})")


@LOWERINGS.text("GELU")
def gelu_text(layer, shape, lines, x):
    lines.forward(f"{x} = F.gelu({x})")


@LOWERINGS.text("Conv2D")
def conv2d_text(layer, shape, lines, x):
    attr = lines.attribute(layer)
    top, bottom, left, right = layer.pads(shape)
    even = top == bottom and left == right
    padding = f", padding={(top, left)!r}" if even and (top or left) else ""
    lines.init(
        f"{attr} = nn.Conv2d({channels(shape)}, {layer.filters}, "
        f"kernel_size={layer.kernel}, stride={layer.stride}{padding})"
    )
    if even:
        lines.forward(f"{x} = {attr}({x})")
    else:  # TensorFlow's 'same': the extra row and column at the bottom and right
        lines.forward(f"{x} = {attr}(F.pad({x}, {(left, right, top, bottom)!r}))")


@LOWERINGS.text("MaxPool2D")
def max_pool_text(layer, shape, lines, x):
    lines.forward(f"{x} = F.max_pool2d({x}, {layer.pool}, {layer.step})")


@LOWERINGS.text("AvgPool2D")
def avg_pool_text(layer, shape, lines, x):
    lines.forward(f"{x} = F.avg_pool2d({x}, {layer.pool}, {layer.step})")


@LOWERINGS.text("GlobalAvgPool")
def global_avg_pool_text(layer, shape, lines, x):
    lines.forward(f"{x} = {x}.mean(dim=(2, 3))")


@LOWERINGS.text("BatchNorm")
def batch_norm_text(layer, shape, lines, x):
    lines.needs.add("BatchNorm")
    lines.init(
        f"{lines.attribute(layer)} = BatchNorm({channels(shape)}, "
        f"momentum={layer.momentum!r}, eps={layer.eps!r})"
    )
    lines.forward(f"{x} = {lines.attribute(layer)}({x})")


@LOWERINGS.text("Dropout")
def dropout_text(layer, shape, lines, x):
    lines.init(f"{lines.attribute(layer)} = nn.Dropout({layer.rate!r})")
    lines.forward(f"{x} = {lines.attribute(layer)}({x})")


@LOWERINGS.text("Residual")
def residual_text(layer, shape, lines, x):
    attr = lines.attribute(layer)
    lines.init(f"{attr} = nn.Module()  # a residual block's layers")
    y = f"y{lines.depth}"
    lines.forward(f"{y} = {x}")
    lines.depth += 1
    lines.stack(layer.body, shape, y, owner=attr)
    lines.depth -= 1
    projection = layer.shortcut(shape)
    if projection is not None:
        lines.init(
            f"{attr}.proj = nn.Conv2d({channels(shape)}, {projection.filters}, "
            f"kernel_size={projection.kernel}, stride={projection.stride})"
        )
        lines.forward(f"{x} = {y} + {attr}.proj({x})")
    else:
        lines.forward(f"{x} = {y} + {x}")
