"""``.pth`` files: PyTorch state_dicts, read with ``weights_only=True`` (no pickle of objects).

fmnist writes the article's layout (``sequence.1.weight`` ... of its ``NeuralNetwork``) so the
article's own code can ``load_state_dict`` the file. It reads that layout and a plain
``nn.Sequential`` state_dict (``1.weight`` ...).
"""

from __future__ import annotations

import io
import pickle
import re

import numpy as np
import torch

from fmnist_core import Weights, WeightsError
from fmnist_core.files import atomic_write_bytes

LAYOUTS = {
    "article": ("sequence.1.weight", "sequence.1.bias", "sequence.3.weight", "sequence.3.bias"),
    "sequential": ("1.weight", "1.bias", "3.weight", "3.bias"),
}
NEUTRAL = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def read_pth(path) -> Weights:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path} holds pickled Python objects besides tensors; refused, since unpickling "
            "runs code (torch.load with weights_only=True)",
            fix="save model.state_dict() with torch.save, never a whole pickled model",
        ) from exc
    except Exception as exc:  # RuntimeError and others for files that are not torch files
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines()[0][:160]
        raise WeightsError(f"{path} is not a PyTorch state_dict file ({reason})",
                           fix="pass a file written by torch.save(model.state_dict(), path)") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state_dict",
                           fix="save model.state_dict()")
    for names in LAYOUTS.values():
        if set(names) == set(state):
            tensors = [state[n].detach().cpu().numpy() for n in names]
            params = {
                "fc1.weight": tensors[0].T, "fc1.bias": tensors[1],
                "fc2.weight": tensors[2].T, "fc2.bias": tensors[3],
            }
            return Weights("mlp", {k: np.ascontiguousarray(v, np.float32) for k, v in params.items()},
                           {"backend": "torch", "source_format": "pth"})
    raise WeightsError(
        f"{path} has keys {', '.join(sorted(state)[:6])}, not the MLP's "
        f"({', '.join(LAYOUTS['article'])})",
        fix="pass a state_dict of the article's 784-20-10 network",
    )


def write_pth(path, weights: Weights) -> None:
    if weights.model != "mlp":
        raise WeightsError(f"the pth format holds the mlp model, not {weights.model!r}")
    p = weights.params
    state = dict(zip(LAYOUTS["article"], (
        torch.from_numpy(np.ascontiguousarray(p["fc1.weight"].T)), torch.from_numpy(np.asarray(p["fc1.bias"])),
        torch.from_numpy(np.ascontiguousarray(p["fc2.weight"].T)), torch.from_numpy(np.asarray(p["fc2.bias"])),
    ), strict=False))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
