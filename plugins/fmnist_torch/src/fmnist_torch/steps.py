"""fmnist-torch's autograd step, public for the plugins that train through it (fmnist-keras on
Keras' torch backend): a block of optimizer steps over resident data, the update the core's
(``OptimizerSlots`` with ``TORCH_OPS``). Other plugins import this module, never the engine's."""

from __future__ import annotations

import numpy as np
import torch

from fmnist_core.plugin_api import ArrayOps, LossOps, OptimizerSlots, per_sample_loss, shard

__all__ = ["TORCH_LOSS", "TORCH_OPS", "autograd_steps"]


def _write(target: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        target.copy_(value)


# read detaches: the update's arithmetic must not be recorded by autograd
TORCH_LOSS = LossOps(
    logsumexp=lambda logits: torch.logsumexp(logits, dim=1),
    mean=lambda logits: logits.mean(dim=1),
    pick=lambda logits, labels: logits.gather(1, labels[:, None])[:, 0],
)

TORCH_OPS = ArrayOps(
    zeros_like=torch.zeros_like,
    read=lambda t: t.detach(),
    write=_write,
    sqrt=torch.sqrt,
    to_numpy=lambda t: t.detach().cpu().numpy(),
    from_numpy=lambda a, like: torch.from_numpy(np.ascontiguousarray(a)).to(like.device),
)


def autograd_steps(
    forward,
    parameters,
    slots: OptimizerSlots,
    images,
    labels,
    index,
    rows,
    *,
    prepare=lambda x: x,
    rank: int = 0,
    world_size: int = 1,
    label_smoothing: float = 0.0,
):
    """Optimizer steps by autograd over a ``(k, batch)`` index block; returns (losses, correct)
    device tensors. ``prepare`` turns the scaled ``(n, H, W)`` batch into ``forward``'s input.

    Data-parallel, each worker takes its shard of the global batch, divides its summed loss by
    the global batch size and the gradients are summed across workers (one all-reduce of one
    flat buffer per step): the update is the single-process one on the whole batch. The update
    is the core's (``slots.apply``), never a ``torch.optim`` optimizer: creating one imports
    triton, whose native library segfaults in a process where TensorFlow was imported first.
    """
    device = index.device
    losses = torch.empty(index.shape[0], device=device)
    correct = torch.empty(index.shape[0], dtype=torch.int64, device=device)
    total = float(index.shape[1])
    if world_size > 1:
        import torch.distributed as dist

        index = index[:, shard(index.shape[1], rank, world_size)]
    for step in range(index.shape[0]):
        sample = index[step]
        x = prepare(images.index_select(0, sample).to(torch.float32).div_(255.0))
        y = labels.index_select(0, sample)
        logits = forward(x)
        per_sample = per_sample_loss(logits.float(), y, label_smoothing, TORCH_LOSS)
        if world_size == 1:
            loss = per_sample.mean()
            grads = torch.autograd.grad(loss, parameters)
        else:
            loss = per_sample.sum() / total
            grads = torch.autograd.grad(loss, parameters)
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            grads = [
                g.view_as(p)
                for g, p in zip(
                    torch.split(flat, [p.numel() for p in parameters]), parameters, strict=True
                )
            ]
        slots.apply(parameters, grads, rows[step])
        losses[step] = loss.detach()
        correct[step] = (logits.detach().argmax(dim=1) == y).sum()
    if world_size > 1:
        dist.all_reduce(losses)
        dist.all_reduce(correct)
    return losses, correct
