"""The PyTorch engine: any ``ModelSpec`` built as ``torch.nn`` modules, trained with autograd.

The training set lives on the device as uint8 (N, H, W); each step gathers its batch with
``index_select`` and scales it there. Losses and correct counts of a block stay in device
tensors and are copied to the host once per block. The article's MLP with plain SGD takes a
fused path: its backward pass written out, the block's batches gathered once.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fmnist_core import BackendError, Engine, EngineConfig, ModelSpec, StepResult
from fmnist_core.backend import shard
from fmnist_core.models import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    ReLU,
)


def resolve_device(name: str | None) -> torch.device:
    name = name or "cpu"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device {name!r} asked for, but torch sees no CUDA device",
                           fix="use device='cpu' or 'auto'")
    return torch.device(name)


class ChannelsLastFlatten(nn.Module):
    """Flatten in the neutral (H, W, C) order: torch's NCHW is permuted first (a no-op for C = 1)."""

    def forward(self, x):
        if x.dim() == 4 and x.shape[1] > 1:
            x = x.permute(0, 2, 3, 1)
        return x.flatten(1)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` that pads like TensorFlow's ``same`` when the padding is uneven."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pads = pads  # left, right, top, bottom

    def forward(self, x):
        return super().forward(F.pad(x, self.pads))


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

    synchronized = False  # data-parallel: batch statistics over every worker's shard (set by the engine)

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
        sums = SummedAcrossWorkers.apply(torch.cat([wide.sum(axes), (wide * wide).sum(axes), count]))
        channels, total = x.shape[1], sums[-1]
        mean = sums[:channels] / total
        var = (sums[channels : 2 * channels] / total - mean * mean).clamp_min(0)
        shape = [1, channels, 1, 1] if x.dim() == 4 else [1, channels]
        out = (x - mean.float().view(shape)) * torch.rsqrt(var.float().view(shape) + self.eps)
        out = out * self.weight.view(shape) + self.bias.view(shape)
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.float(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.float(), alpha=m)
            self.num_batches_tracked.add_(1)
        return out


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


def build_module(spec: ModelSpec, seed: int, device: torch.device) -> nn.Sequential:
    """``nn.Sequential`` of ``spec``, children named after the layers (``conv1``, ``fc1``, …)."""
    children = OrderedDict()
    for index, (layer, shape) in enumerate(zip(spec.layers, spec.shapes_between, strict=False)):
        channels = shape[-1] if len(shape) == 3 else (1 if len(shape) == 2 else shape[0])
        key = layer.name or f"{layer.kind.lower()}{index}"
        if isinstance(layer, Flatten):
            module = ChannelsLastFlatten()
        elif isinstance(layer, Dense):
            module = nn.Linear(shape[0], layer.units)
        elif isinstance(layer, Conv2D):
            pads = (0, 0, 0, 0)
            if layer.padding == "same":
                (top, bottom), (left, right) = layer.same_padding(shape[0]), layer.same_padding(shape[1])
                pads = (left, right, top, bottom)
            if pads[0] == pads[1] and pads[2] == pads[3]:
                module = nn.Conv2d(channels, layer.filters, layer.kernel, layer.stride, padding=(pads[2], pads[0]))
            else:
                module = SameConv2d(channels, layer.filters, layer.kernel, layer.stride, pads=pads)
        elif isinstance(layer, MaxPool2D):
            module = nn.MaxPool2d(layer.pool, layer.step)
        elif isinstance(layer, ReLU):
            module = nn.ReLU()
        elif isinstance(layer, BatchNorm):
            module = BiasedBatchNorm(channels, eps=layer.eps, momentum=layer.momentum)
        elif isinstance(layer, Dropout):
            module = SeededDropout(layer.rate, seed * 1000 + index, device)
        elif isinstance(layer, GlobalAvgPool):
            module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            raise BackendError(f"the torch backend cannot build layer {layer!r}")
        children[key] = module
    return nn.Sequential(children).to(device)


def to_torch(name: str, value: np.ndarray) -> np.ndarray:
    """A neutral tensor in torch's layout: Linear (out, in), Conv2d (out, in, kh, kw)."""
    if name.endswith(".weight") and value.ndim == 2:
        return np.ascontiguousarray(value.T)
    if name.endswith(".weight") and value.ndim == 4:
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    return value


def to_neutral(name: str, value: np.ndarray) -> np.ndarray:
    """The inverse of ``to_torch``."""
    if name.endswith(".weight") and value.ndim == 2:
        return np.ascontiguousarray(value.T)
    if name.endswith(".weight") and value.ndim == 4:
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    return value


def join_process_group(device: torch.device, rank: int, world_size: int) -> None:
    """``init_process_group`` from torchrun's environment: gloo on the CPU, NCCL on CUDA."""
    import datetime

    import torch.distributed as dist

    if dist.is_initialized():
        return
    if "MASTER_ADDR" not in os.environ:
        raise BackendError(f"WORLD_SIZE={world_size} is set but MASTER_ADDR is not",
                           fix="launch with torchrun (or fmnist train --workers N)")
    timeout = datetime.timedelta(seconds=float(os.environ.get("FMNIST_DIST_TIMEOUT", "120")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                            timeout=timeout)


class TorchEngine(Engine):
    def __init__(self, config: EngineConfig):
        options = config.options
        self.spec, self.optimizer = config.model, config.optimizer
        self.device_obj = resolve_device(options.get("device"))
        self.device = str(self.device_obj)
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        self.precision = options.get("precision") or "float32"
        if self.precision == "tf32" and self.device_obj.type != "cuda":
            raise BackendError(f"precision='tf32' applies to CUDA matmuls and convolutions; this run is on {self.device}",
                               fix="use precision='float32' or 'bf16', or device='cuda'")
        if self.device_obj.type == "cuda":
            # exact float32 by default, so that GPU results match the CPU and the other backends
            torch.backends.cuda.matmul.allow_tf32 = self.precision == "tf32"
            torch.backends.cudnn.allow_tf32 = self.precision == "tf32"
        self.channels_last = bool(options.get("channels_last"))
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)  # only the framework initialiser draws from it
        self.model = build_module(self.spec, config.seed, self.device_obj)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        torch.random.set_rng_state(generator_state)
        self.tensors = {name: tensor for name, tensor in self.model.state_dict(keep_vars=True).items()
                        if name in self.spec.shapes()}
        self.trainable_names = self.spec.trainable()
        self.trainable = [self.tensors[name] for name in self.trainable_names]
        if config.initial_params is not None:
            self.set_params(config.initial_params)
        self.slots = {(slot, name): torch.zeros_like(self.tensors[name])
                      for slot in self.optimizer.slots for name in self.trainable_names}
        self.step_kind = options.get("step", "fused")
        if self.step_kind not in ("fused", "autograd"):
            raise BackendError(f"torch option step={self.step_kind!r} is unknown", fix="use 'fused' or 'autograd'")
        self.rank, self.world_size = config.rank, config.world_size
        if self.world_size > 1:
            join_process_group(self.device_obj, self.rank, self.world_size)
            for module in self.model.modules():
                if isinstance(module, BiasedBatchNorm):
                    module.synchronized = True
        self.fused = (self.step_kind == "fused" and self.spec.is_mlp() and self.optimizer.is_plain_sgd
                      and self.precision != "bf16")
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def set_params(self, params):
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                tensor.copy_(torch.from_numpy(to_torch(name, np.asarray(params[name], np.float32))))

    def get_params(self):
        return {name: to_neutral(name, tensor.detach().cpu().numpy()).copy() for name, tensor in self.tensors.items()}

    def optimizer_state(self):
        return {f"{slot}.{name}": to_neutral(name, value.cpu().numpy()).copy() for (slot, name), value in self.slots.items()}

    def set_optimizer_state(self, state):
        for (slot, name), value in self.slots.items():
            value.copy_(torch.from_numpy(to_torch(name, np.asarray(state[f"{slot}.{name}"], np.float32))))

    def attach(self, images, labels):
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8)).to(self.device_obj)  # a writable copy
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device_obj)

    def train_steps(self, batches, scalars):
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        index = torch.from_numpy(np.ascontiguousarray(batches, dtype=np.int64)).to(self.device_obj)
        steps = index.shape[0]
        rows = np.asarray(scalars, np.float64).tolist()  # host floats: no device round trip
        losses = torch.empty(steps, device=self.device_obj)
        correct = torch.empty(steps, dtype=torch.int64, device=self.device_obj)
        if self.fused:
            with torch.no_grad():
                self._fused_steps(index, [row[0] for row in rows], losses, correct)
        elif self.world_size > 1:
            self._data_parallel_steps(index, rows, losses, correct)
        else:
            self._autograd_steps(index, rows, losses, correct)
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    @torch.no_grad()
    def _update(self, grads, scalars):
        """``fmnist_core``'s optimizer update on each trainable tensor and its slots, in place."""
        for name, param, grad in zip(self.trainable_names, self.trainable, grads, strict=True):
            slots = [self.slots[(slot, name)] for slot in self.optimizer.slots]
            new, new_slots = self.optimizer.update(param, grad, slots, scalars, torch.sqrt)
            param.copy_(new)
            for target, value in zip(slots, new_slots, strict=True):
                target.copy_(value)

    def _data_parallel_steps(self, index, rows, losses, correct):
        # Each worker takes its shard of the global batch, divides its summed loss by the global
        # batch size and the gradients are summed across workers (one all-reduce of one flat
        # buffer per step): the update is the single-process one on the whole batch.
        import torch.distributed as dist

        model, parameters = self.model, self.trainable
        mine = index[:, shard(index.shape[1], self.rank, self.world_size)]
        total = float(index.shape[1])
        model.train()
        for step in range(index.shape[0]):
            sample = mine[step]
            x = self.images.index_select(0, sample).unsqueeze(1).to(torch.float32).div_(255.0)
            y = self.labels.index_select(0, sample)
            with self._autocast():
                logits = model(self._layout(x))
            loss = F.cross_entropy(logits.float(), y, reduction="sum") / total
            grads = torch.autograd.grad(loss, parameters)
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            self._update([g.view_as(p) for g, p in zip(torch.split(flat, [p.numel() for p in parameters]), parameters,
                                                        strict=True)], rows[step])
            losses[step] = loss.detach()
            correct[step] = (logits.detach().argmax(dim=1) == y).sum()
        dist.all_reduce(losses)
        dist.all_reduce(correct)

    def _fused_steps(self, index, rates, losses, correct):
        # The MLP's backward pass written out with in-place updates, same arithmetic as autograd.
        # Measured here (steady s/epoch): this 0.126, eager autograd 0.32, torch.compile of the
        # autograd step 0.38-0.40 after a 21 s first epoch; so compile is not offered.
        # The block's images are gathered and scaled in one go, and the metrics are computed
        # from the stored logits after the loop, so that each step runs only its own math.
        # Data-parallel, each worker runs this on its shard and the four gradients are summed
        # across workers in one all-reduce before the same update.
        first, second = self.model[1], self.model[3]
        w1, b1, w2, b2 = first.weight, first.bias, second.weight, second.bias
        total = index.shape[1]  # the global batch: the loss is a mean over all of it
        if self.world_size > 1:
            index = index[:, shard(total, self.rank, self.world_size)]
        steps, batch = index.shape
        flat = index.reshape(-1)
        x_block = self.images.view(len(self.images), -1).index_select(0, flat).to(torch.float32).div_(255.0)
        x_block = x_block.view(steps, batch, -1)
        y_block = self.labels.index_select(0, flat).view(steps, batch)
        one_hot = torch.nn.functional.one_hot(y_block, w2.shape[0]).to(torch.float32)
        logits_block = torch.empty(steps, batch, w2.shape[0], device=self.device_obj)
        for step in range(steps):
            step_size = rates[step] / total  # d(mean loss)/d(logits) = (softmax - one_hot) / batch
            x = x_block[step]
            hidden = torch.addmm(b1, x, w1.t()).relu_()
            logits = torch.addmm(b2, hidden, w2.t(), out=logits_block[step])
            grad = torch.softmax(logits, dim=1).sub_(one_hot[step])
            grad_hidden = torch.ops.aten.threshold_backward(grad.mm(w2), hidden, 0)
            if self.world_size > 1:
                self._all_reduced_update(grad, hidden, grad_hidden, x, step_size)
                continue
            w2.addmm_(grad.t(), hidden, alpha=-step_size)
            b2.sub_(grad.sum(dim=0), alpha=step_size)
            w1.addmm_(grad_hidden.t(), x, alpha=-step_size)
            b1.sub_(grad_hidden.sum(dim=0), alpha=step_size)
        log_probs = torch.log_softmax(logits_block, dim=2)
        picked = -log_probs.gather(2, y_block.unsqueeze(2)).squeeze(2)
        correct.copy_((logits_block.argmax(dim=2) == y_block).sum(dim=1))
        if self.world_size == 1:
            losses.copy_(picked.mean(dim=1))
            return
        import torch.distributed as dist

        losses.copy_(picked.sum(dim=1) / total)
        dist.all_reduce(losses)
        dist.all_reduce(correct)

    def _all_reduced_update(self, grad, hidden, grad_hidden, x, step_size):
        import torch.distributed as dist

        first, second = self.model[1], self.model[3]
        params = (second.weight, second.bias, first.weight, first.bias)
        grads = (grad.t().mm(hidden), grad.sum(dim=0), grad_hidden.t().mm(x), grad_hidden.sum(dim=0))
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for param, summed in zip(params, torch.split(flat, [p.numel() for p in params]), strict=True):
            param.sub_(summed.view_as(param), alpha=step_size)

    def _autograd_steps(self, index, rows, losses, correct):
        # The update is fmnist_core's Optimizer.update on the module's own tensors rather than a
        # torch.optim optimizer: creating one imports triton, whose native library segfaults in
        # a process where TensorFlow was imported first (any process with every fmnist plugin).
        model, parameters = self.model, self.trainable
        model.train()
        for step in range(index.shape[0]):
            sample = index[step]
            x = self.images.index_select(0, sample).unsqueeze(1).to(torch.float32).div_(255.0)
            y = self.labels.index_select(0, sample)
            with self._autocast():
                logits = model(self._layout(x))
            loss = F.cross_entropy(logits.float(), y)
            self._update(torch.autograd.grad(loss, parameters), rows[step])
            losses[step] = loss.detach()
            correct[step] = (logits.detach().argmax(dim=1) == y).sum()

    @torch.no_grad()
    def logits(self, images):
        self.model.eval()
        array = np.ascontiguousarray(images, dtype=np.uint8)
        x = torch.from_numpy(array if array.flags.writeable else array.copy()).to(self.device_obj)
        with self._autocast():
            logits = self.model(self._layout(x.unsqueeze(1).to(torch.float32).div_(255.0)))
        return logits.float().cpu().numpy().astype(np.float32, copy=False)

    def _autocast(self):
        """bf16 autocast for precision='bf16' (matmuls and convolutions; the loss stays float32)."""
        import contextlib

        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_obj.type, dtype=torch.bfloat16)

    def _layout(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
