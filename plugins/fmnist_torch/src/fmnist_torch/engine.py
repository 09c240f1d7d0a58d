"""The PyTorch engine: any ``ModelSpec`` built through ``fmnist_torch.lowering``, trained with
autograd and the core's optimizer (``OptimizerSlots``).

The training set lives on the device as uint8 (N, H, W); each step gathers its batch with
``index_select`` and scales it there. Losses and correct counts of a block stay in device
tensors and are copied to the host once per block. The article's MLP with plain SGD takes a
fused path: its backward pass written out, the block's batches gathered once.
"""

from __future__ import annotations

import contextlib
import os
import re

import numpy as np
import torch

from fmnist_core import BackendError, Engine, EngineConfig, StepResult
from fmnist_core.plugin_api import (
    OptimizerSlots,
    lowering_table,
    shard,
)

from .lowering import BiasedBatchNorm, build_module
from .steps import TORCH_OPS, autograd_steps

#: what gloo and NCCL say when a peer of a collective is gone
PEER_LOST = re.compile(r"gloo|nccl|[Cc]onnection (closed|reset|refused)|peer|[Tt]imed out")

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, before any engine changes it


def resolve_device(name: str | None) -> torch.device:
    name = name or "cpu"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(
            f"device {name!r} asked for, but torch sees no CUDA device",
            fix="use device='cpu' or 'auto'",
        )
    return torch.device(name)


def neutral_converters(spec):
    """(to_neutral, from_neutral) of a tensor by neutral name, by the lowering table's layouts."""
    table, layouts = lowering_table("torch"), {p.name: p.layout for p in spec.params}
    return (
        lambda name, a: table.to_neutral(layouts[name], a),
        lambda name, a: table.to_framework(layouts[name], a),
    )


def join_process_group(device: torch.device, rank: int, world_size: int) -> None:
    """``init_process_group`` from torchrun's environment: gloo on the CPU, NCCL on CUDA."""
    import datetime

    import torch.distributed as dist

    if dist.is_initialized():
        return
    if "MASTER_ADDR" not in os.environ:
        raise BackendError(
            f"WORLD_SIZE={world_size} is set but MASTER_ADDR is not",
            fix="launch with torchrun (or fmnist train --workers N)",
        )
    timeout = datetime.timedelta(seconds=float(os.environ.get("FMNIST_DIST_TIMEOUT", "120")))
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        rank=rank,
        world_size=world_size,
        timeout=timeout,
    )


class TorchEngine(Engine):
    def __init__(self, config: EngineConfig):
        options = config.options
        self.spec, self.optimizer = config.model, config.optimizer
        self.device_obj = resolve_device(options.get("device"))
        self.device = str(self.device_obj)
        # a small model trains on one CPU thread (ModelSpec.is_small: as fast, and no cliff when
        # the cores are busy); torch's threads are per process, so others get its default back
        threads = options.get("threads") or (1 if self.spec.is_small() else DEFAULT_THREADS)
        if self.device_obj.type == "cpu" or options.get("threads"):
            torch.set_num_threads(int(threads))
        self.precision = config.precision
        tf32 = bool(options.get("tf32"))
        if tf32 and self.device_obj.type != "cuda":
            raise BackendError(
                f"tf32=True applies to CUDA matmuls and convolutions; this run is on {self.device}",
                fix="leave tf32 out (or use precision='bfloat16'), or use device='cuda'",
            )
        if self.device_obj.type == "cuda":
            # exact float32 by default, so that GPU results match the CPU and the other backends
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        wanted = options.get("channels_last")
        self.channels_last = (
            self.spec.has_capability("convolution") if wanted is None else bool(wanted)
        )
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)  # only the framework initialiser draws from it
        self.model = build_module(self.spec, config.seed, self.device_obj)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        torch.random.set_rng_state(generator_state)
        self.tensors = {
            name: tensor
            for name, tensor in self.model.state_dict(keep_vars=True).items()
            if name in self.spec.shapes()
        }
        self.to_neutral, self.from_neutral = neutral_converters(self.spec)
        if config.initial_params is not None:
            self.set_params(config.initial_params)
        names = self.spec.trainable()
        self.trainable = [self.tensors[name] for name in names]
        self.slots = OptimizerSlots(
            self.optimizer, names, self.trainable, TORCH_OPS, self.to_neutral, self.from_neutral
        )
        self.step_kind = options.get("step", "fused")
        self.rank, self.world_size = config.rank, config.world_size
        if self.world_size > 1:
            join_process_group(self.device_obj, self.rank, self.world_size)
            for module in self.model.modules():
                if isinstance(module, BiasedBatchNorm):
                    module.synchronized = True
        self.label_smoothing = config.label_smoothing
        self.fused = (
            not self.label_smoothing
            and self.step_kind == "fused"
            and self.spec.is_two_layer_perceptron()
            and self.optimizer.is_plain_sgd
            and self.precision == "float32"
        )
        self.labels: torch.Tensor | None = None

    def set_params(self, params):
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                tensor.copy_(
                    torch.from_numpy(self.from_neutral(name, np.asarray(params[name], np.float32)))
                )

    def get_params(self):
        return {
            name: self.to_neutral(name, tensor.detach().cpu().numpy()).copy()
            for name, tensor in self.tensors.items()
        }

    def attach(self, images, labels):
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8)).to(
            self.device_obj
        )  # a writable copy
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device_obj)

    def train_steps(self, batches, scalars):
        if self.world_size == 1:
            return self._train_steps(batches, scalars)
        import torch.distributed as dist

        try:
            return self._train_steps(batches, scalars)
        except RuntimeError as exc:  # gloo's lost peers are plain RuntimeErrors
            if not isinstance(exc, dist.DistError) and not PEER_LOST.search(str(exc)):
                raise
            from fmnist_core.plugin_api import peer_failure, peer_reason

            reason = peer_reason(str(exc), type(exc).__name__)
            raise peer_failure(self.rank, self.world_size, reason) from exc

    def _train_steps(self, batches, scalars):
        self.require_attached()
        index = torch.from_numpy(np.ascontiguousarray(batches, dtype=np.int64)).to(self.device_obj)
        rows = np.asarray(scalars, np.float64).tolist()  # host floats: no device round trip
        if self.fused:
            with torch.no_grad():
                losses, correct = self._fused_steps(index, [row[0] for row in rows])
        else:
            self.model.train()
            losses, correct = autograd_steps(
                self._forward,
                self.trainable,
                self.slots,
                self.images,
                self.labels,
                index,
                rows,
                prepare=self._layout,
                rank=self.rank,
                world_size=self.world_size,
                label_smoothing=self.label_smoothing,
            )
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    def _forward(self, x):
        with self._autocast():
            return self.model(x)

    def _fused_steps(self, index, rates):
        # The MLP's backward pass written out with in-place updates, same arithmetic as autograd
        # (BENCHMARKS.md: about 2.5× the autograd step's speed; torch.compile of the autograd
        # step was slower still after a 21 s first epoch, so compile is not offered). The
        # block's images are gathered and scaled in one go, and the metrics are computed from
        # the stored logits after the loop, so that each step runs only its own math.
        # Data-parallel, each worker runs this on its shard and the four gradients are summed
        # across workers in one all-reduce before the same update.
        first, second = self.model[1], self.model[3]
        w1, b1, w2, b2 = first.weight, first.bias, second.weight, second.bias
        total = index.shape[1]  # the global batch: the loss is a mean over all of it
        if self.world_size > 1:
            index = index[:, shard(total, self.rank, self.world_size)]
        steps, batch = index.shape
        flat = index.reshape(-1)
        x_block = (
            self.images.view(len(self.images), -1)
            .index_select(0, flat)
            .to(torch.float32)
            .div_(255.0)
        )
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
        correct = (logits_block.argmax(dim=2) == y_block).sum(dim=1)
        if self.world_size == 1:
            return picked.mean(dim=1), correct
        import torch.distributed as dist

        losses = picked.sum(dim=1) / total
        dist.all_reduce(losses)
        dist.all_reduce(correct)
        return losses, correct

    def _all_reduced_update(self, grad, hidden, grad_hidden, x, step_size):
        import torch.distributed as dist

        first, second = self.model[1], self.model[3]
        params = (second.weight, second.bias, first.weight, first.bias)
        grads = (
            grad.t().mm(hidden),
            grad.sum(dim=0),
            grad_hidden.t().mm(x),
            grad_hidden.sum(dim=0),
        )
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for param, summed in zip(
            params, torch.split(flat, [p.numel() for p in params]), strict=True
        ):
            param.sub_(summed.view_as(param), alpha=step_size)

    @torch.no_grad()
    def logits(self, images):
        self.model.eval()
        array = np.ascontiguousarray(images, dtype=np.uint8)
        x = torch.from_numpy(array if array.flags.writeable else array.copy()).to(self.device_obj)
        logits = self._forward(self._layout(x.to(torch.float32).div_(255.0)))
        return logits.float().cpu().numpy().astype(np.float32, copy=False)

    def _autocast(self):
        """bfloat16 autocast for precision='bfloat16' (matmuls and convolutions; weights, loss and
        update stay float32)."""
        if self.precision != "bfloat16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_obj.type, dtype=torch.bfloat16)

    def _layout(self, x):
        """A scaled ``(n, H, W)`` batch as the model's NCHW input (channels-last when asked)."""
        x = x.unsqueeze(1)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
