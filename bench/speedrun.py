"""The Fashion-MNIST speedrun, measured as record-holders measure: the mean (and spread) of the
final test accuracy of a fixed schedule over seeds, and that schedule's time.

    python bench/speedrun.py [--recipes fast balanced accurate] [--backends torch tf keras]
                             [--seeds 0 1 2 3 4] [--epochs fast=2,3 balanced=6] [--by-hand]
                             [--references 1] [--device cpu] [--precision float32 auto]
                             [--out DIR] [--record]
    python bench/speedrun.py --table DIR/speedrun.jsonl [...]   # the tables again, merged

Every run is its own process and trains its recipe's fixed schedule (or, with ``--epochs``, the
recipe at other lengths: time-to-target rows come from such schedules, never from a first
crossing). Nothing is evaluated during training; after the last step the test set is evaluated
once, with the recipe's own weight average and test-time augmentation. "fit" counts from the
first step to the last; "process" from the process's start (imports, data load, model build
included) to the last step. Recipes are tuned on the validation split; the test set only
reports here. ``--precision`` is fmnist's setting (``float32``, ``bfloat16``, ``auto``; several:
each recipe in each); a row not in float32 names the arithmetic it ran in.

Against the compute floor (bench/floor.py): each row's FLOPs per training image (counted from
its layers), the GFLOP/s its fit achieved, and that as a share of this CPU's float32 GEMM peak,
probed at the start of the run.

Reference programs, in the same run: ``cnn-by-hand``, bench/cnn.py's plain PyTorch cnn (NCHW
eager, ``torch.optim.Adam`` + ``OneCycleLR``, batch 128, 4 epochs), run ``--references`` times
spread over the session; with ``--by-hand``, each recipe's own network as a plain eager PyTorch
``nn.Sequential`` with ``torch.optim.Adam`` + ``OneCycleLR`` (``torch-by-hand``), and Keras' own
``compile``/``fit`` of it (``keras-fit``), seed 0. Prints one JSON line per run and Markdown
tables naming the CPU; ``--record`` writes each recipe's figures where ``fmnist models`` shows
them (``src/fmnist_core/builtin/measured.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS = (0.90, 0.92, 0.93, 0.945)
HERE = Path(__file__).resolve().parent
MEASURED = HERE.parent / "src" / "fmnist_core" / "builtin" / "measured.json"
REFERENCE = "cnn-by-hand"


def child(
    recipe: str, backend: str, seed: int, epochs: int | None, device: str, precision: str
) -> dict:
    """Train ``recipe``'s fixed schedule on ``backend``; its final test accuracy and times."""
    launched = float(os.environ["FMNIST_SPEEDRUN_LAUNCHED"])
    from fmnist_core import Callback, Trainer, load_dataset

    data = load_dataset()
    options = {"device": device} if backend in ("torch", "tf") else {}
    trainer = Trainer(
        backend=backend,
        model=recipe,
        seed=seed,
        epochs=epochs,
        verbose=0,
        data=data,
        precision=precision,
        **options,
    )
    trainer.config = trainer.config.replace(log_every=10**6)  # no progress reports

    class Clock(Callback):
        def on_train_begin(self, trainer):
            self.begun = time.perf_counter()

        def on_train_end(self, trainer, history):
            self.ended = time.perf_counter()
            self.process = time.time() - launched

    clock = Clock()
    trainer.callbacks.append(clock)
    trainer.fit()
    return {
        "recipe": recipe,
        "backend": backend,
        "seed": seed,
        "epochs": trainer.config.epochs,
        "recipe_epochs": trainer.model.recipe.epochs,
        "parameters": trainer.model.count_params(),
        "precision": trainer.computes_in,
        "training_flops": trainer.model.training_flops(),
        "train_images": len(data.train),
        "fit_seconds": clock.ended - clock.begun,
        "process_seconds": clock.process,
        "epoch_seconds": trainer.history.column("seconds"),
        "accuracy": trainer.evaluate().accuracy,
        "device": device,
    }


def plain_torch_net(spec):
    """``spec`` as the plain eager PyTorch a user would write: NCHW, ``nn`` modules only."""
    from torch import nn

    from fmnist_core.spec.layers import (
        BatchNorm,
        Conv2D,
        Dense,
        Flatten,
        GlobalAvgPool,
        MaxPool2D,
        ReLU,
        Residual,
    )

    class Add(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    def build(layers, shape):
        modules = []
        for layer in layers:
            out = layer.output_shape(shape)
            if isinstance(layer, Conv2D):
                top, bottom, left, right = layer.pads(shape)
                if (top, left) != (bottom, right):
                    modules.append(nn.ZeroPad2d((left, right, top, bottom)))
                    top = left = 0
                modules.append(
                    nn.Conv2d(shape[2], layer.filters, layer.kernel, layer.stride, (top, left))
                )
            elif isinstance(layer, MaxPool2D):
                modules.append(nn.MaxPool2d(layer.pool, layer.stride or layer.pool))
            elif isinstance(layer, BatchNorm):
                modules.append(
                    nn.BatchNorm2d(shape[2]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])
                )
            elif isinstance(layer, ReLU):
                modules.append(nn.ReLU())
            elif isinstance(layer, Flatten):
                modules.append(nn.Flatten())
            elif isinstance(layer, GlobalAvgPool):
                modules.extend([nn.AdaptiveAvgPool2d(1), nn.Flatten()])
            elif isinstance(layer, Dense):
                width = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                modules.append(nn.Linear(width, layer.units))
            elif isinstance(layer, Residual):
                body = build(layer.body, shape)
                shortcut = (
                    nn.Conv2d(shape[2], out[2], 1, shape[0] // out[0])
                    if out != shape
                    else nn.Identity()
                )
                modules.append(Add(body, shortcut))
            else:
                raise SystemExit(f"plain_torch_net: no plain PyTorch for {layer.kind}")
            shape = out
        return nn.Sequential(*modules)

    shape = tuple(spec.input_shape)
    return build(spec.layers, shape if len(shape) == 3 else (*shape, 1))


def torch_by_hand(recipe_name: str, seed: int, epochs: int | None, device: str) -> dict:
    """The recipe's network in plain eager PyTorch: Adam + OneCycleLR, its batch and epochs
    (its augmentation, weight average and test-time flips left out: those are fmnist's work)."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    from fmnist_core import get_model, load_dataset

    spec = get_model(recipe_name)
    recipe = spec.recipe
    epochs = epochs or recipe.epochs
    torch.manual_seed(seed)
    data = load_dataset()
    dev = torch.device(device)
    x_train = torch.from_numpy(data.train.images.copy()).unsqueeze(1).float().div_(255).to(dev)
    y_train = torch.from_numpy(data.train.labels.astype(np.int64)).to(dev)
    model = plain_torch_net(spec).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
    steps = epochs * -(-60000 // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.learning_rate, total_steps=steps
    )
    started, seconds = time.perf_counter(), []
    for _ in range(epochs):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(60000, device=dev)
        for i in range(0, 60000, recipe.batch_size):
            rows = order[i : i + recipe.batch_size]
            loss = F.cross_entropy(
                model(x_train[rows]), y_train[rows], label_smoothing=recipe.label_smoothing
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        seconds.append(time.perf_counter() - epoch_start)
    fit = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        images = torch.from_numpy(data.test.images.copy()).unsqueeze(1).float().div_(255)
        logits = model(images.to(dev))
    accuracy = float((logits.argmax(1).cpu().numpy() == data.test.labels).mean())
    return {"fit_seconds": fit, "epoch_seconds": seconds, "accuracy": accuracy, "epochs": epochs}


def keras_fit(recipe_name: str, seed: int, epochs: int | None) -> dict:
    """Keras' own ``compile``/``fit`` of the recipe's network (bench/cnn.py's, any recipe)."""
    sys.path.insert(0, str(HERE))
    os.environ["FMNIST_BENCH_MODEL"] = recipe_name
    if epochs:
        os.environ["FMNIST_BENCH_EPOCHS"] = str(epochs)
    import cnn

    return cnn.keras_by_hand(seed)


def reference_child(program: str, recipe: str, seed: int, epochs: int | None, device: str):
    launched = float(os.environ["FMNIST_SPEEDRUN_LAUNCHED"])
    if program == REFERENCE:
        sys.path.insert(0, str(HERE))
        os.environ["FMNIST_BENCH_DEVICE"] = device
        import cnn

        result, recipe = cnn.torch_by_hand(seed), "cnn"
    elif program == "torch-by-hand":
        result = torch_by_hand(recipe, seed, epochs, device)
    else:
        result = keras_fit(recipe, seed, epochs)
    from fmnist_core import get_model

    return {
        "recipe": recipe,
        "backend": program,
        "seed": seed,
        "epochs": result.get("epochs") or epochs or get_model(recipe).recipe.epochs,
        "recipe_epochs": get_model(recipe).recipe.epochs,
        "parameters": get_model(recipe).count_params(),
        "fit_seconds": result["fit_seconds"],
        "process_seconds": time.time() - launched,
        "epoch_seconds": result["epoch_seconds"],
        "accuracy": result["accuracy"],
        "device": device,
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


def spread(values: list[float], digits: int) -> str:
    text = f"{statistics.mean(values):.{digits}f}"
    return text + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def groups(records: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    found: dict[tuple[str, str, int], list[dict]] = {}
    for record in records:
        if "recipe" not in record:  # the GEMM probe's record
            continue
        precision = record.get("precision", "float32")
        backend = record["backend"] + ("" if precision == "float32" else f" ({precision})")
        key = (record["recipe"], backend, record["epochs"])
        found.setdefault(key, []).append(record)
    return found


def floor_cells(group: list[dict], peak: float | None) -> list[str]:
    """MFLOP per training image, achieved GFLOP/s, and that as a share of the fp32 GEMM peak."""
    first = group[0]
    if "training_flops" not in first:
        return ["", "", ""]
    done = first["training_flops"] * first["train_images"] * first["epochs"]
    rate = done / statistics.mean(r["fit_seconds"] for r in group) / 1e9
    return [
        f"{first['training_flops'] / 1e6:.2f}",
        f"{rate:.0f}",
        f"{rate / peak:.0%}" if peak else "",
    ]


def tables(records: list[dict], machine: str) -> str:
    peaks = [r["gemm_peak"] for r in records if r.get("gemm_peak")]
    peak = statistics.mean(peaks) if peaks else None
    references = [r["fit_seconds"] for r in records if r["backend"] == REFERENCE]
    reference = statistics.mean(references) if references else None
    by_hand = {
        (r["recipe"], r["backend"], r["epochs"]): r["fit_seconds"]
        for r in records
        if r["backend"] in ("torch-by-hand", "keras-fit")
    }
    head = [
        "recipe",
        "backend",
        "epochs",
        "seeds",
        "parameters",
        "test accuracy (mean ± sd)",
        "min–max",
        "fit s",
        "process s",
        "fit ÷ cnn by hand",
        "fit ÷ same net, plain PyTorch",
        "fit ÷ same net, Keras fit",
        "MFLOP / training image",
        "GFLOP/s",
        "of fp32 GEMM peak",
    ]
    peak_text = f" float32 GEMM peak (bench/floor.py): {peak:,.0f} GFLOP/s." if peak else ""
    lines = [
        f"Machine: {machine}.{peak_text}",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + " |",
    ]
    for (recipe, backend, epochs), group in groups(records).items():
        accuracies = [r["accuracy"] for r in group]
        fits = [r["fit_seconds"] for r in group]
        fit = statistics.mean(fits)
        hand = by_hand.get((recipe, "torch-by-hand", epochs))
        keras = by_hand.get((recipe, "keras-fit", epochs))
        mine = backend not in (REFERENCE, "torch-by-hand", "keras-fit")
        cells = [
            recipe,
            backend,
            str(epochs),
            " ".join(str(r["seed"]) for r in group),
            str(group[0]["parameters"]),
            spread(accuracies, 4),
            f"{min(accuracies):.4f}–{max(accuracies):.4f}",
            spread(fits, 1),
            spread([r["process_seconds"] for r in group], 1),
            f"{fit / reference:.2f}" if reference else "",
            f"{fit / hand:.2f}" if hand and mine else "",
            f"{fit / keras:.2f}" if keras and mine else "",
            *(floor_cells(group, peak) if mine else ["", "", ""]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Time to a mean test accuracy: the quickest fixed schedule of this run whose "
        "mean over its seeds reaches it.",
        "",
    ]
    lines += ["| target | backend | schedule | mean test accuracy | fit s | fit ÷ cnn by hand |"]
    lines += ["| ---: | --- | --- | ---: | ---: | ---: |"]
    backends = sorted({b for (_, b, _) in groups(records)} - {REFERENCE})
    for target in TARGETS:
        for backend in backends:
            reached = [
                (statistics.mean(r["fit_seconds"] for r in g), key, g)
                for key, g in groups(records).items()
                if key[1] == backend
                and len(g) >= 2
                and statistics.mean(r["accuracy"] for r in g) >= target
            ]
            if not reached:
                continue
            fit, (recipe, _, epochs), group = min(reached, key=lambda item: item[0])
            mean = statistics.mean(r["accuracy"] for r in group)
            lines.append(
                f"| {target:g} | {backend} | {recipe}, {epochs} epochs, {len(group)} seeds | "
                f"{mean:.4f} | {fit:.1f} | " + (f"{fit / reference:.2f} |" if reference else " |")
            )
    return "\n".join(lines)


def record(records: list[dict], machine: str) -> None:
    """Each recipe's own schedule's figures, per backend, where ``fmnist models`` shows them."""
    measured = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    references = [r["fit_seconds"] for r in records if r["backend"] == REFERENCE]
    for (recipe, backend, epochs), group in groups(records).items():
        if backend in (REFERENCE, "torch-by-hand", "keras-fit"):
            continue
        if epochs != group[0]["recipe_epochs"] or len(group) < 2:
            continue
        accuracies = [r["accuracy"] for r in group]
        fits = [r["fit_seconds"] for r in group]
        measured.setdefault(recipe, {})[backend] = {
            "accuracy": round(statistics.mean(accuracies), 4),
            "accuracy_sd": round(statistics.stdev(accuracies), 4),
            "seeds": len(group),
            "epochs": epochs,
            "fit_seconds": round(statistics.mean(fits), 1),
            "reference_ratio": round(statistics.mean(fits) / statistics.mean(references), 2)
            if references
            else None,
            "device": group[0]["device"],
            "machine": machine.split(",")[0] + f", {os.cpu_count()} cores",
            "date": datetime.date.today().isoformat(),
        }
    MEASURED.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    print(f"wrote {MEASURED}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["fast", "balanced", "accurate"])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf", "keras"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--epochs",
        nargs="*",
        default=[],
        metavar="RECIPE=N,M",
        help="also run RECIPE at these lengths (time-to-target rows)",
    )
    parser.add_argument(
        "--references", type=int, default=2, help="runs of the cnn-by-hand reference (0: none)"
    )
    parser.add_argument(
        "--by-hand",
        action="store_true",
        help="also each recipe's network in plain PyTorch and Keras fit (seed 0)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (torch and tf runs)")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["float32"],
        choices=("float32", "bfloat16", "auto"),
        help="fmnist's precision setting: each recipe run in each of these",
    )
    parser.add_argument("--out", help="also write the records (JSON lines) and the tables here")
    parser.add_argument("--record", action="store_true", help="write measured.json (see above)")
    parser.add_argument("--table", nargs="+", metavar="JSONL", help="only tabulate these records")
    parser.add_argument("--child", nargs=4, metavar=("RECIPE", "BACKEND", "SEED", "EPOCHS"))
    parser.add_argument("--reference-child", nargs=4, metavar=("PROGRAM", "RECIPE", "SEED", "E"))
    args = parser.parse_args()
    if args.child:
        recipe, backend, seed, epochs = args.child
        epochs_or_none = int(epochs) or None
        print(
            json.dumps(
                child(recipe, backend, int(seed), epochs_or_none, args.device, args.precision[0])
            )
        )
        return
    if args.reference_child:
        program, recipe, seed, epochs = args.reference_child
        result = reference_child(program, recipe, int(seed), int(epochs) or None, args.device)
        print(json.dumps(result))
        return
    sys.path.insert(0, str(HERE))
    from run import machine

    if args.table:
        records = [
            json.loads(line) for name in args.table for line in Path(name).read_text().splitlines()
        ]
        print(tables(records, machine()))
        if args.record:
            record(records, machine())
        return
    lengths = {name: [0] for name in args.recipes}
    for item in args.epochs:
        name, _, values = item.partition("=")
        lengths.setdefault(name, [0]).extend(int(v) for v in values.split(","))
    plan = [
        ["--child", recipe, backend, str(seed), str(epochs), "--device", args.device]
        + ["--precision", precision]
        for recipe, schedule in lengths.items()
        for epochs in schedule
        for backend in args.backends
        for precision in args.precision
        for seed in args.seeds
    ]
    if args.by_hand:
        plan += [
            ["--reference-child", program, recipe, "0", "0", "--device", args.device]
            for recipe in args.recipes
            for program in ("torch-by-hand", "keras-fit")
        ]
    reference = ["--reference-child", REFERENCE, "cnn", "0", "0", "--device", args.device]
    for i in range(args.references):  # spread over the session: the machine's pace drifts
        plan.insert(i * len(plan) // max(args.references, 1) + i, reference)
    from floor import gemm_peak

    probe = {"gemm_peak": gemm_peak("float32"), "backend": "probe"}
    records = []
    for item in [None, *plan]:
        result = run(item) if item else probe
        if result:
            print(json.dumps(result), flush=True)
            records.append(result)
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                with open(Path(args.out) / "speedrun.jsonl", "a") as out:
                    out.write(json.dumps(result) + "\n")
    text = tables(records, machine())
    print("\n" + text)
    if args.out:
        (Path(args.out) / "speedrun.md").write_text(text + "\n")
    if args.record:
        record(records, machine())


if __name__ == "__main__":
    main()
