"""The PyTorch engine: the article's ``nn.Sequential`` MLP with SGD and cross-entropy.

The training set lives on the device as uint8 (N, 784); each block of steps gathers its batches
with ``index_select`` and scales them there (the autograd step: one batch at a time). Losses and
correct counts of a block are kept in device tensors and copied to the host once per block.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fmnist_core import BackendError, Engine, EngineConfig, StepResult


def resolve_device(name: str | None) -> torch.device:
    name = name or "cpu"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device {name!r} asked for, but torch sees no CUDA device",
                           fix="use device='cpu' or 'auto'")
    return torch.device(name)


def article_network() -> nn.Sequential:
    """``nn.Sequential(Flatten, Linear(784, 20), ReLU, Linear(20, 10))`` as in the article."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 20), nn.ReLU(), nn.Linear(20, 10))


class TorchMLPEngine(Engine):
    def __init__(self, config: EngineConfig):
        options = config.options
        self.device_obj = resolve_device(options.get("device"))
        self.device = str(self.device_obj)
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        if self.device_obj.type == "cuda":
            # keep float32 matmuls exact so that GPU results match the CPU and the other backends
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)  # only the framework initialiser draws from it
        self.model = article_network().to(self.device_obj)
        torch.random.set_rng_state(generator_state)
        if config.initial_params is not None:
            self.set_params(config.initial_params)
        self.learning_rate = config.learning_rate
        self.step_kind = options.get("step", "fused")
        if self.step_kind not in ("fused", "autograd"):
            raise BackendError(f"torch option step={self.step_kind!r} is unknown", fix="use 'fused' or 'autograd'")
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    @property
    def _layers(self) -> tuple[nn.Linear, nn.Linear]:
        return self.model[1], self.model[3]

    def set_params(self, params):
        first, second = self._layers
        with torch.no_grad():
            first.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["fc1.weight"].T)))
            first.bias.copy_(torch.from_numpy(np.asarray(params["fc1.bias"])))
            second.weight.copy_(torch.from_numpy(np.ascontiguousarray(params["fc2.weight"].T)))
            second.bias.copy_(torch.from_numpy(np.asarray(params["fc2.bias"])))

    def get_params(self):
        first, second = self._layers
        return {
            "fc1.weight": first.weight.detach().cpu().numpy().T.copy(),
            "fc1.bias": first.bias.detach().cpu().numpy().copy(),
            "fc2.weight": second.weight.detach().cpu().numpy().T.copy(),
            "fc2.bias": second.bias.detach().cpu().numpy().copy(),
        }

    def attach(self, images, labels):
        flat = np.array(images, dtype=np.uint8).reshape(len(images), -1)  # a writable copy
        self.images = torch.from_numpy(flat).to(self.device_obj)
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device_obj)

    def train_steps(self, batches):
        if self.images is None:
            raise BackendError("train_steps called before attach()", fix="attach the data first")
        index = torch.from_numpy(np.ascontiguousarray(batches, dtype=np.int64)).to(self.device_obj)
        steps = index.shape[0]
        losses = torch.empty(steps, device=self.device_obj)
        correct = torch.empty(steps, dtype=torch.int64, device=self.device_obj)
        if self.step_kind == "fused":
            with torch.no_grad():
                self._fused_steps(index, losses, correct)
        else:
            self._autograd_steps(index, losses, correct)
        return StepResult(losses.cpu().numpy(), correct.cpu().numpy())

    def _fused_steps(self, index, losses, correct):
        # The MLP's backward pass written out with in-place updates, same arithmetic as autograd.
        # Measured here (steady s/epoch): this 0.126, eager autograd 0.32, torch.compile of the
        # autograd step 0.38-0.40 after a 21 s first epoch; so compile is not offered.
        # The block's images are gathered and scaled in one go, and the metrics are computed
        # from the stored logits after the loop, so that each step runs only its own math.
        first, second = self._layers
        w1, b1, w2, b2 = first.weight, first.bias, second.weight, second.bias
        steps, batch = index.shape
        flat = index.reshape(-1)
        x_block = self.images.index_select(0, flat).to(torch.float32).div_(255.0).view(steps, batch, -1)
        y_block = self.labels.index_select(0, flat).view(steps, batch)
        one_hot = torch.nn.functional.one_hot(y_block, w2.shape[0]).to(torch.float32)
        logits_block = torch.empty(steps, batch, w2.shape[0], device=self.device_obj)
        step_size = self.learning_rate / batch  # d(mean loss)/d(logits) = (softmax - one_hot) / batch
        for step in range(steps):
            x = x_block[step]
            hidden = torch.addmm(b1, x, w1.t()).relu_()
            logits = torch.addmm(b2, hidden, w2.t(), out=logits_block[step])
            grad = torch.softmax(logits, dim=1).sub_(one_hot[step])
            grad_hidden = torch.ops.aten.threshold_backward(grad.mm(w2), hidden, 0)
            w2.addmm_(grad.t(), hidden, alpha=-step_size)
            b2.sub_(grad.sum(dim=0), alpha=step_size)
            w1.addmm_(grad_hidden.t(), x, alpha=-step_size)
            b1.sub_(grad_hidden.sum(dim=0), alpha=step_size)
        log_probs = torch.log_softmax(logits_block, dim=2)
        losses.copy_(-log_probs.gather(2, y_block.unsqueeze(2)).squeeze(2).mean(dim=1))
        correct.copy_((logits_block.argmax(dim=2) == y_block).sum(dim=1))

    def _autograd_steps(self, index, losses, correct):
        # Plain SGD by hand rather than torch.optim.SGD: creating that optimizer imports triton,
        # whose native library segfaults in a process where TensorFlow was imported first
        # (any process with every fmnist plugin installed). Without momentum it is the same update.
        model = self.model
        parameters = list(model.parameters())
        model.train()
        for step in range(index.shape[0]):
            rows = index[step]
            x = self.images.index_select(0, rows).to(torch.float32).div_(255.0)
            y = self.labels.index_select(0, rows)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            grads = torch.autograd.grad(loss, parameters)
            with torch.no_grad():
                torch._foreach_add_(parameters, grads, alpha=-self.learning_rate)
            losses[step] = loss.detach()
            correct[step] = (logits.detach().argmax(dim=1) == y).sum()

    @torch.no_grad()
    def logits(self, images):
        self.model.eval()
        flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
        flat = torch.from_numpy(flat if flat.flags.writeable else flat.copy())
        out = []
        for start in range(0, len(flat), 8192):
            x = flat[start : start + 8192].to(self.device_obj).to(torch.float32).div_(255.0)
            out.append(self.model(x).cpu())
        return torch.cat(out).numpy().astype(np.float32, copy=False)
