"""``fmnist compare``: one recipe, the same seed, on every installed training backend, side by side.

The article's question, answered by measurement: each backend trains in its own process (so
its wall time and peak memory are its own), from the same initial weights on the same batches.
The table gives each one's steady epoch, fit time, process wall, peak RSS, test accuracy and the
largest relative difference of its per-step losses from the NumPy reference over the first
steps; ``compare.md``, ``compare.json`` and ``compare.png`` go into the output folder.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .. import plugins
from ..atomic import atomic_write_bytes, atomic_write_json
from ..errors import ConfigError
from ..training.run_folder import RunFolder

REFERENCE_STEPS = {"default": 100, "slow": 20}  # first steps compared with the NumPy reference


def training_backends(names: list[str] | None) -> list[str]:
    """The backends to compare: ``names`` (checked), or every installed backend that trains."""
    usable = {
        n: b for n, b in plugins.backends().items() if b.trains and b.unavailable_reason() is None
    }
    if not names:
        return sorted(usable, key=lambda n: (n != "numpy", n))
    unknown = [n for n in names if n not in usable]
    if unknown:
        raise ConfigError(
            f"cannot compare {', '.join(unknown)}: not an installed backend that trains",
            fix=f"pick from {', '.join(sorted(usable))}",
        )
    return names


def run_one(
    backend: str, model: str, seed: int, epochs: int | None, folder: Path, data_dir: str | None
) -> dict:
    """Train in a child process; its figures (steady epoch, fit, wall, peak RSS, accuracy)."""
    command = [
        sys.executable,
        "-m",
        "fmnist_core.cli",
        "train",
        "--backend",
        backend,
        "--model",
        model,
        "--seed",
        str(seed),
        "--log-every",
        "1",
        "--no-plots",
        "--out",
        str(folder),
    ]
    command += ["--epochs", str(epochs)] if epochs else []
    command += ["--data-dir", data_dir] if data_dir else []
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines = []
    assert child.stdout is not None  # stdout=PIPE
    for line in child.stdout:  # each epoch's summary as it comes (not the per-batch lines)
        lines.append(line.rstrip())
        if re.match(r"Epoch \d+:|Test accuracy", line):
            print(f"  {backend}: {line.strip()}", file=sys.stderr, flush=True)
    err = "\n".join(lines[-20:])
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise ConfigError(
            f"backend {backend} failed: {err.strip().splitlines()[-1:] or ['no message']}",
            fix="run the same fmnist train command to see why",
        )
    run = RunFolder(folder)
    history = run.read_history()
    seconds = history.column("seconds")
    return {
        "backend": backend,
        # the first epoch compiles and warms up: with one epoch there is no steady one to show
        "steady_epoch_seconds": statistics.median(seconds[1:]) if len(seconds) > 1 else None,
        "fit_seconds": sum(seconds),
        "process_seconds": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "test_accuracy": (run.read_evaluation() or {})["accuracy"],
        "step_losses": [p.batch_loss for p in history.progress if p.epoch == 0],
    }


def reference_losses(model: str, seed: int, steps: int, data_dir: str | None) -> list[float]:
    """The NumPy reference's first ``steps`` per-step losses of the same run (its first epoch's
    order, the core's initial weights)."""
    import numpy as np

    from ..training.trainer import Trainer

    trainer = Trainer(backend="numpy", model=model, seed=seed, data_dir=data_dir, verbose=0)
    return np.asarray(trainer.loop().run_steps(steps).losses, np.float64).tolist()


def compare(
    model: str = "mlp",
    backends: list[str] | None = None,
    seed: int = 0,
    epochs: int | None = None,
    out: str | os.PathLike = "compare",
    data_dir: str | None = None,
) -> list[dict]:
    """Train ``model`` on each backend and write the comparison into ``out``; its rows."""
    from ..training.config import TrainConfig

    TrainConfig(seed=seed, epochs=epochs)  # the run schema's checks: --epochs 0 is one line
    names = training_backends(backends)
    spec = plugins.get_model(model)
    epochs = epochs or TrainConfig().resolve(spec.recipe).epochs
    steps = REFERENCE_STEPS["default"] if spec.is_small() else REFERENCE_STEPS["slow"]
    out = Path(out)
    rows = []
    for name in names:
        print(f"fmnist compare: training {model} on {name} ...", file=sys.stderr, flush=True)
        rows.append(run_one(name, model, seed, epochs, out / name, data_dir))
    reference = reference_losses(model, seed, steps, data_dir)
    for row in rows:
        mine = row.pop("step_losses")[:steps]
        row["max_step_loss_difference"] = max(
            abs(a - b) / abs(b) for a, b in zip(mine, reference, strict=False)
        )
    table = markdown(rows, model, seed, epochs, steps)
    atomic_write_bytes(out / "compare.md", table.encode())
    atomic_write_json(
        out / "compare.json",
        {
            "model": model,
            "seed": seed,
            "epochs": epochs,
            "reference_steps": steps,
            "machine": machine(),
            "rows": rows,
        },
    )
    draw(rows, model, out / "compare.png")
    return rows


def markdown(rows: list[dict], model: str, seed: int, epochs: int, steps: int) -> str:
    lines = [
        f"`fmnist compare --model {model} --epochs {epochs} --seed {seed}` on {machine()}.",
        "",
        "| backend | steady epoch s | fit s | process wall s | peak RSS MB | test accuracy | "
        f"max rel. loss diff vs NumPy, first {steps} steps |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        steady = r["steady_epoch_seconds"]
        lines.append(
            f"| {r['backend']} | {'—' if steady is None else f'{steady:.3f}'} | "
            f"{r['fit_seconds']:.1f} | "
            f"{r['process_seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['test_accuracy']:.4f} | "
            f"{r['max_step_loss_difference']:.1e} |"
        )
    if any(r["steady_epoch_seconds"] is None for r in rows):
        lines += ["", "— : one epoch has no steady epoch (the first compiles and warms up); "
                  "`--epochs 2` or more measures one."]  # fmt: skip
    return "\n".join(lines) + "\n"


def draw(rows: list[dict], model: str, path: Path) -> None:
    """Two panels: steady epoch seconds and test accuracy per backend (needs matplotlib)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return
    from .plots import _pyplot, save_figure

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [r["backend"] for r in rows]
    steady = all(r["steady_epoch_seconds"] is not None for r in rows)
    key, title = ("steady_epoch_seconds", "steady epoch") if steady else ("fit_seconds", "fit")
    seconds = left.bar(names, [r[key] for r in rows], color="#4c72b0")
    left.bar_label(seconds, fmt="%.3g", padding=2)
    left.set_ylim(0, max(r[key] for r in rows) * 1.2)
    left.set_title(f"{model}: {title} (s)")
    accuracy = right.bar(names, [r["test_accuracy"] for r in rows], color="#55a868")
    right.bar_label(accuracy, fmt="%.4f", padding=2)
    low = min(r["test_accuracy"] for r in rows)
    right.set_ylim(max(0.0, low - 0.02), min(1.0, max(r["test_accuracy"] for r in rows) + 0.02))
    right.set_title(f"{model}: test accuracy")
    fig.tight_layout()
    save_figure(fig, path)


def machine() -> str:
    import platform

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
