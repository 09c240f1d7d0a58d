"""Model architectures by name, with their parameters in the neutral layout.

The neutral layout is what the safetensors weight files hold and what every backend reads and
writes: dense kernels are stored as ``(in, out)`` (PyTorch's ``Linear.weight`` is the transpose),
float32, with the names given here. Backends may implement any subset of the registered models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor: neutral name, shape and initialiser (``glorot_uniform`` or ``zeros``)."""

    name: str
    shape: tuple[int, ...]
    init: str = "zeros"


@dataclass(frozen=True)
class ModelSpec:
    """A named architecture: its parameters in the neutral layout and how to initialise them."""

    name: str
    description: str
    params: tuple[ParamSpec, ...]
    input_shape: tuple[int, ...] = (28, 28)
    num_classes: int = 10

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """Initial parameters from ``seed``, identical on every backend and machine."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x466D6E]))
        params = {}
        for spec in self.params:
            if spec.init == "glorot_uniform":
                fan_in, fan_out = spec.shape[0], spec.shape[-1]
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                params[spec.name] = rng.uniform(-limit, limit, spec.shape).astype(np.float32)
            elif spec.init == "zeros":
                params[spec.name] = np.zeros(spec.shape, dtype=np.float32)
            else:
                raise ValueError(f"unknown initialiser {spec.init!r} for {spec.name}")
        return params

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {p.name: p.shape for p in self.params}

    def check_params(self, params: dict[str, np.ndarray], source: str = "weights") -> dict[str, np.ndarray]:
        """Validate names and shapes; return float32 contiguous copies. Raises WeightsError."""
        from .errors import WeightsError

        expected = self.shapes()
        missing = sorted(set(expected) - set(params))
        extra = sorted(set(params) - set(expected))
        if missing or extra:
            raise WeightsError(
                f"{source} do not fit model {self.name!r}: "
                + (f"missing {', '.join(missing)}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {', '.join(extra)}" if extra else ""),
                fix=f"load weights saved for {self.name!r}, or pass the model they were made for",
            )
        checked = {}
        for name, shape in expected.items():
            array = np.asarray(params[name])
            if tuple(array.shape) != shape:
                raise WeightsError(
                    f"{source}: {name} has shape {tuple(array.shape)}, model {self.name!r} "
                    f"expects {shape}",
                    fix="load weights of the same architecture",
                )
            checked[name] = np.ascontiguousarray(array, dtype=np.float32)
        return checked


MLP = ModelSpec(
    name="mlp",
    description="the article's 784-20-10 perceptron: Flatten, Dense(20, relu), Dense(10)",
    params=(
        ParamSpec("fc1.weight", (784, 20), "glorot_uniform"),
        ParamSpec("fc1.bias", (20,), "zeros"),
        ParamSpec("fc2.weight", (20, 10), "glorot_uniform"),
        ParamSpec("fc2.bias", (10,), "zeros"),
    ),
)
