"""What a sweep leaves: its table, the best trial's weights and evaluation, a picture."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .space import METRIC

if TYPE_CHECKING:
    from .sweep import SweepResult


def _reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    fmnist = [
        line for line in lines if "Error: " in line and "fmnist" not in line.split(":")[0].lower()
    ]
    return (fmnist or lines or [type(error).__name__])[-1].replace("fmnist_core.errors.", "")[:300]


def _table(grid, space: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
    rows = []
    for result in grid:
        config = {k: result.config.get(k) for k in space}
        history = result.metrics_dataframe
        curve = (
            [] if history is None or METRIC not in history else [float(v) for v in history[METRIC]]
        )
        if result.error is not None:
            status = f"failed: {_reason(result.error)}"
        elif len(curve) < epochs:
            status = f"stopped early after epoch {len(curve)}"
        else:
            status = "done"
        rows.append(
            {
                "trial": Path(result.path).name,
                **config,
                "status": status,
                "epochs": len(curve),
                "val_accuracy": max(curve) if curve else None,
                "final_val_accuracy": curve[-1] if curve else None,
                "curve": curve,
                "path": result.path,
            }
        )
    rows.sort(
        key=lambda r: (
            -(r["val_accuracy"] if r["val_accuracy"] is not None else -1),
            json.dumps({k: r[k] for k in space}, sort_keys=True, default=str),
        )
    )
    return rows


def _write_outputs(result: SweepResult, data_dir: str | None) -> None:
    from ...atomic import atomic_write_bytes, atomic_write_json
    from ...training.run_folder import RunFolder
    from ...training.trainer import Trainer

    folder, rows = result.folder, result.rows
    folder.mkdir(parents=True, exist_ok=True)
    columns = [k for k in rows[0] if k not in ("curve", "path")] if rows else []
    csv_lines = [",".join(columns)] + [",".join(_cell(r[c]) for c in columns) for r in rows]
    atomic_write_bytes(folder / "sweep.csv", ("\n".join(csv_lines) + "\n").encode())
    markdown = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    markdown += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    atomic_write_bytes(folder / "sweep.md", ("\n".join(markdown) + "\n").encode())
    done = [
        r for r in rows if r["val_accuracy"] is not None and RunFolder(r["path"]).weights.exists()
    ]
    if done:
        best = done[0]
        atomic_write_bytes(
            folder / "best.safetensors", RunFolder(best["path"]).weights.read_bytes()
        )
        trainer = Trainer.load(folder / "best.safetensors", verbose=0, data_dir=data_dir)
        test = trainer.evaluate()  # the test set, touched once, for the best trial only
        result.best = {
            "trial": best["trial"],
            "val_accuracy": best["val_accuracy"],
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "config": {
                k: best[k]
                for k in columns
                if k not in ("trial", "status", "epochs", "val_accuracy", "final_val_accuracy")
            },
        }
        atomic_write_json(folder / "best.json", result.best)
    try:
        _draw(result)
    except ImportError:
        pass


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isnan(value) else "nan"
    return "" if value is None else str(value).replace(",", ";").replace("|", "/")


def _draw(result: SweepResult) -> None:
    import matplotlib

    from ..plots import save_figure

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    for number, row in enumerate(result.rows):
        if not row["curve"]:
            continue
        best = number == 0
        axes.plot(
            range(1, len(row["curve"]) + 1),
            row["curve"],
            marker="o",
            lw=2.5 if best else 1,
            color="tab:red" if best else "tab:gray",
            alpha=1 if best else 0.6,
            zorder=3 if best else 2,
            label=f"best: {row['trial']}" if best else None,
        )
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy")
    axes.set_title(f"{len(result.rows)} trials; best in red")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    save_figure(figure, result.folder / "sweep.png")
