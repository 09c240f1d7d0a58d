"""``.pth`` files: PyTorch state_dicts, read with ``weights_only=True`` (no pickle of objects).

For the ``mlp`` fmnist writes the article's layout (``sequence.1.weight`` ... of its
``NeuralNetwork``) so the article's own code can ``load_state_dict`` the file, and reads that
layout and a plain ``nn.Sequential`` one (``1.weight`` ...). Any other model is the
``state_dict`` of the module ``fmnist_torch.lowering.build_module`` builds from its spec
(``conv1.weight`` in torch's layout, ``bn1.running_var``, …); its model is recognised by its keys
and shapes among the registered models (the first registered where two share an architecture,
as ``fast`` and ``balanced`` do: a state_dict holds no name).
"""

from __future__ import annotations

import io
import pickle
import re
import warnings

import numpy as np
import torch

from fmnist_core import Weights, WeightsError
from fmnist_core.plugin_api import architecture_of, atomic_write_bytes, models

from .engine import neutral_converters
from .lowering import build_module

ARTICLE_LAYOUTS = {
    "article": ("sequence.1.weight", "sequence.1.bias", "sequence.3.weight", "sequence.3.bias"),
    "sequential": ("1.weight", "1.bias", "3.weight", "3.bias"),
}
MLP_NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def _load(path):
    try:
        with warnings.catch_warnings():  # torch warns before refusing; fmnist's one line says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path} holds pickled Python objects besides tensors; refused, since unpickling "
            "runs code (torch.load with weights_only=True)",
            fix="save model.state_dict() with torch.save, never a whole pickled model",
        ) from exc
    except Exception as exc:  # RuntimeError and others for files that are not torch files
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines()[0][:160]
        raise WeightsError(
            f"{path} is not a PyTorch state_dict file ({reason})",
            fix="pass a file written by torch.save(model.state_dict(), path)",
        ) from exc
    if not isinstance(state, dict):
        raise WeightsError(
            f"{path} holds a {type(state).__name__}, not a state_dict",
            fix="save model.state_dict()",
        )
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def read_pth(path) -> Weights:
    state = _load(path)
    mlp = models()["mlp"]
    to_neutral, _ = neutral_converters(mlp)
    for names in ARTICLE_LAYOUTS.values():
        if set(names) == set(state):
            params = {
                neutral: to_neutral(neutral, state[key].detach().cpu().numpy())
                for neutral, key in zip(MLP_NAMES, names, strict=True)
            }
            return Weights(
                "mlp",
                {k: np.ascontiguousarray(v, np.float32) for k, v in params.items()},
                {"backend": "torch", "source_format": "pth"},
            )
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for name, spec in models().items():
        to_neutral, from_neutral = neutral_converters(spec)
        wanted = {
            n: from_neutral(n, np.empty(s, np.float32)).shape for n, s in spec.shapes().items()
        }
        if shapes == wanted:
            params = {
                n: np.ascontiguousarray(to_neutral(n, state[n].detach().cpu().numpy()), np.float32)
                for n in spec.shapes()
            }
            return Weights(name, params, {"backend": "torch", "source_format": "pth"})
    raise WeightsError(
        f"{path} has keys {', '.join(sorted(state)[:6])}, which fit no known model "
        f"(the article's MLP has {', '.join(ARTICLE_LAYOUTS['article'])})",
        fix="pass a state_dict of the article's network or of a module fmnist built",
    )


def write_pth(path, weights: Weights) -> None:
    spec = architecture_of(weights)
    params = spec.check_params(weights.params)
    _, to_torch = neutral_converters(spec)
    if spec.name == "mlp" and spec.is_two_layer_perceptron():
        state = {
            key: torch.from_numpy(to_torch(neutral, params[neutral]))
            for neutral, key in zip(MLP_NAMES, ARTICLE_LAYOUTS["article"], strict=True)
        }
    else:
        module = build_module(spec, 0, torch.device("cpu"))
        state = module.state_dict()
        for name in spec.shapes():
            state[name] = torch.from_numpy(to_torch(name, params[name]))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
