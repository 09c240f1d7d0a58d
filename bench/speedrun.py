"""The Fashion-MNIST speedrun: time to 0.90 / 0.92 / 0.935 test accuracy, per recipe and backend.

    python bench/speedrun.py [--recipes fast accurate] [--backends torch tf keras] [--seeds 0 1 2]
                             [--evals-per-epoch 4] [--references torch-by-hand] [--device cpu]

Each run is its own process. The test set is evaluated on a schedule (``--evals-per-epoch``
times an epoch, with the recipe's own weight average and test-time augmentation), and the time
spent evaluating is subtracted, so the reported times are training alone: "fit" counts from the
first step, "process" from the process's start (imports and the data load included). A target
is reached at the first evaluation at or above it; recipes are tuned on the validation split,
the test set only reports here. The reference programs (``bench/cnn.py``'s plain PyTorch cnn,
NCHW eager, batch 128, 4 epochs) run in the same session, for comparisons within one run.
Prints one JSON line per run and a Markdown table naming the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS = (0.90, 0.92, 0.935)
HERE = Path(__file__).resolve().parent


def child(recipe: str, backend: str, seed: int, evals_per_epoch: int, device: str) -> dict:
    """Train ``recipe`` on ``backend``; the test accuracy at each scheduled evaluation."""
    started = float(os.environ["FMNIST_SPEEDRUN_LAUNCHED"])
    from fmnist_core import Callback, Trainer, load_dataset

    data = load_dataset()
    options = {"device": device} if backend in ("torch", "tf") else {}
    trainer = Trainer(backend=backend, model=recipe, seed=seed, verbose=0, data=data, **options)
    batches = -(-len(data.train) // trainer.batch_size)
    trainer.config = trainer.config.replace(log_every=max(1, batches // evals_per_epoch))
    points: list[dict] = []

    class Evaluations(Callback):
        evaluating = 0.0  # seconds spent evaluating so far, not training

        def on_train_begin(self, trainer):
            self.fit_started = time.perf_counter()

        def on_train_end(self, trainer, history):
            self.fit_ended = time.perf_counter()

        def on_progress(self, trainer, progress, batches):
            now = time.perf_counter()
            trained = now - self.fit_started - self.evaluating
            process = time.time() - started - self.evaluating
            accuracy = trainer.evaluate().accuracy
            self.evaluating += time.perf_counter() - now
            points.append(
                {
                    "epoch": progress.epoch + progress.batch / batches,
                    "fit_seconds": trained,
                    "process_seconds": process,
                    "accuracy": accuracy,
                }
            )

    evaluations = Evaluations()
    trainer.callbacks.append(evaluations)
    trainer.fit()
    # from the first step, like the points: the framework's import is the process figure's
    fit = evaluations.fit_ended - evaluations.fit_started - evaluations.evaluating
    return {
        "recipe": recipe,
        "backend": backend,
        "seed": seed,
        "fit_seconds": fit,
        "epochs": trainer.epochs,
        "parameters": trainer.model.count_params(),
        "final_accuracy": points[-1]["accuracy"],
        "points": points,
        "epoch_seconds": trainer.history.column("seconds"),
    }


def reference(name: str, seed: int, device: str) -> dict:
    """A plain-framework reference program of bench/cnn.py, timed the same way (fit alone)."""
    sys.path.insert(0, str(HERE))
    os.environ["FMNIST_BENCH_DEVICE"] = device
    import cnn

    result = {"torch-by-hand": cnn.torch_by_hand, "keras-fit": cnn.keras_by_hand}[name](seed)
    return {
        "recipe": "cnn (by hand)",
        "backend": name,
        "seed": seed,
        "fit_seconds": result["fit_seconds"],
        "final_accuracy": result["accuracy"],
        "epoch_seconds": result["epoch_seconds"],
        "points": [],
    }


def run(args: list[str]) -> dict | None:
    env = {
        **os.environ,
        "FMNIST_SPEEDRUN_LAUNCHED": repr(time.time()),
        "KERAS_BACKEND": "tensorflow",
    }
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        print(f"{' '.join(args)} failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def crossing(record: dict, target: float, key: str) -> float | None:
    return next((p[key] for p in record["points"] if p["accuracy"] >= target), None)


def summary(value_lists: list[float | None]) -> str:
    reached = [v for v in value_lists if v is not None]
    if not reached:
        return "not reached"
    text = f"{statistics.mean(reached):.1f}"
    if len(reached) > 1:
        text += f" ± {statistics.stdev(reached):.1f}"
    return text + (
        "" if len(reached) == len(value_lists) else f" ({len(reached)}/{len(value_lists)} seeds)"
    )


def table(records: list[dict]) -> str:
    sys.path.insert(0, str(HERE))
    from run import machine

    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["recipe"], record["backend"]), []).append(record)
    head = ["recipe", "backend", "seeds", "parameters", "epochs"]
    head += [f"to {t:g}: fit s" for t in TARGETS] + [f"to {t:g}: process s" for t in TARGETS]
    head += ["fit s (whole)", "÷ reference", "final test accuracy"]
    references = [r["fit_seconds"] for r in records if r["recipe"] == "cnn (by hand)"]
    lines = [
        f"Machine: {machine()}.",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + " |",
    ]
    for (recipe, backend), group in groups.items():
        accuracies = [r["final_accuracy"] for r in group]
        cells = [
            recipe,
            backend,
            " ".join(str(r["seed"]) for r in group),
            str(group[0].get("parameters", "")),
            str(group[0].get("epochs", "")),
        ]
        cells += [
            summary([crossing(r, t, "fit_seconds") for r in group]) if group[0]["points"] else ""
            for t in TARGETS
        ]
        cells += [
            summary([crossing(r, t, "process_seconds") for r in group])
            if group[0]["points"]
            else ""
            for t in TARGETS
        ]
        fits = [r["fit_seconds"] for r in group]
        cells += [
            summary(fits),
            f"{statistics.mean(fits) / references[0]:.2f}" if references else "",
            f"{statistics.mean(accuracies):.4f}"
            + (f" ({', '.join(f'{a:.4f}' for a in accuracies)})" if len(group) > 1 else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["fast", "accurate"])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf", "keras"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--evals-per-epoch", type=int, default=4)
    parser.add_argument("--references", nargs="*", default=["torch-by-hand"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (torch and tf runs)")
    parser.add_argument("--out", help="also write the records (JSON lines) and the table here")
    parser.add_argument("--child", nargs=3, metavar=("RECIPE", "BACKEND", "SEED"))
    parser.add_argument("--reference-child", nargs=2, metavar=("PROGRAM", "SEED"))
    args = parser.parse_args()
    if args.child:
        recipe, backend, seed = args.child
        print(json.dumps(child(recipe, backend, int(seed), args.evals_per_epoch, args.device)))
        return
    if args.reference_child:
        print(
            json.dumps(
                reference(args.reference_child[0], int(args.reference_child[1]), args.device)
            )
        )
        return
    records = []
    for name in args.references:
        record = run(["--reference-child", name, "0", "--device", args.device])
        if record:
            print(json.dumps(record), flush=True)
            records.append(record)
    for recipe in args.recipes:
        for backend in args.backends:
            for seed in args.seeds:
                record = run(
                    [
                        "--child",
                        recipe,
                        backend,
                        str(seed),
                        "--evals-per-epoch",
                        str(args.evals_per_epoch),
                        "--device",
                        args.device,
                    ]
                )
                if record:
                    print(json.dumps(record), flush=True)
                    records.append(record)
    text = table(records)
    print("\n" + text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "speedrun.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records)
        )
        (Path(args.out) / "speedrun.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
