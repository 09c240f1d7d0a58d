"""Typed use of the public API, checked by mypy in `nox -s lint` (never run by pytest)."""

from pathlib import Path

import numpy as np

from fmnist_core import (
    Augment,
    BatchNorm,
    Conv2D,
    Dense,
    EvalResult,
    Flatten,
    GlobalAvgPool,
    History,
    ModelSpec,
    Optimizer,
    ReLU,
    Residual,
    Schedule,
    Trainer,
    export_targets,
    get_backend,
    load_dataset,
)

spec: ModelSpec = ModelSpec(
    "typed",
    [
        Conv2D(8, 3),
        BatchNorm(),
        ReLU(),
        Residual([Conv2D(8, 3), ReLU()]),
        GlobalAvgPool(),
        Dense(10),
    ],
)
other = ModelSpec("flat", [Flatten(), Dense(20), ReLU(), Dense(10)])
trainer = Trainer(
    backend="numpy",
    model=spec,
    epochs=1,
    optimizer=Optimizer("adam"),
    schedule=Schedule("onecycle"),
    augment=Augment(flip=True),
    label_smoothing=0.1,
    ema=0.99,
)
history: History = trainer.fit(np.zeros((8, 28, 28), np.uint8), np.zeros(8, np.int64))
result: EvalResult = trainer.evaluate(np.zeros((8, 784), np.float32), [0] * 8, tta=True)
accuracy: float = result.accuracy
saved: Path = trainer.save("typed.safetensors")
again: Trainer = Trainer.load(saved, backend="numpy")
labels: list = again.predict(np.zeros((2, 28, 28), np.uint8))
count: int = len(load_dataset().train)

# the registry's lookups are typed (issue 44: they were Any)
backend_name: str = get_backend("numpy").name
offers: tuple[str, ...] = get_backend("numpy").precisions
suffixes: list[str] = [target.suffix for target in export_targets().values()]
