"""Benchmark runner: `python bench/run.py [--reps 3] [--write BENCHMARKS.md]` (or `nox -s bench`).

Runs every program of bench/programs.py whose framework is installed, each in its own process,
round-robin over the repetitions, and reports the median of each figure: steady epoch seconds
(mean of epochs 2-5), total train seconds, process wall seconds (start to exit), peak RSS and
test accuracy, with ratios against the article-style program and the floor, and the core's
overhead over the hand-written loop of the same framework. Also times `import fmnist_core`,
`fmnist backends`, the first data load (verify + cache) and a cached load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORK = {"torch": "torch", "tf": "tensorflow", "keras": "keras"}


def programs() -> list[tuple[str, str, str]]:
    """(name, framework group, role) for everything that can run here."""
    rows = [("floor", "numpy", "floor"), ("fmnist-numpy", "numpy", "fmnist")]
    for group, module in FRAMEWORK.items():
        if importlib.util.find_spec(module) and importlib.util.find_spec(f"fmnist_{group}"):
            rows += [
                (f"article-{group}", group, "article"),
                (f"handwritten-{group}", group, "handwritten"),
                (f"fmnist-{group}", group, "fmnist"),
            ]
    return rows


def run_process(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.stdout.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {child.returncode}")
    return wall, usage.ru_maxrss / 1024, out


def measure_programs(reps: int, only: list[str] | None = None) -> dict[str, list[dict]]:
    chosen = [name for name, _, _ in programs() if not only or name in only or name == "floor"]
    results: dict[str, list[dict]] = {name: [] for name in chosen}
    for rep in range(reps):
        for name in chosen:
            wall, rss, out = run_process(
                [sys.executable, str(HERE / "programs.py"), name],
                env={"KERAS_BACKEND": "tensorflow"},
            )
            record = json.loads(out.strip().splitlines()[-1])
            record.update(
                wall_seconds=wall,
                peak_rss_mb=rss,
                steady_epoch_seconds=statistics.mean(record["epoch_seconds"][1:]),
            )
            results[name].append(record)
            print(
                f"rep {rep + 1}/{reps} {name:<18} steady {record['steady_epoch_seconds']:.3f} "
                "s/epoch, "
                f"wall {wall:.1f} s, accuracy {record['test_accuracy']:.4f}",
                file=sys.stderr,
                flush=True,
            )
    return results


def measure_busy(reps: int) -> str:
    """Each fmnist program's steady epoch quiet and beside one busy process (a Python loop
    spinning on a core), round-robin; a Markdown table of the medians."""
    names = [name for name, _, role in programs() if role == "fmnist"]
    epochs: dict[tuple[str, bool], list[float]] = {(n, b): [] for n in names for b in (False, True)}
    for _ in range(reps):
        for name in names:
            for busy in (False, True):
                spinner = (
                    subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                )
                try:
                    out = run_process(
                        [sys.executable, str(HERE / "programs.py"), name],
                        env={"KERAS_BACKEND": "tensorflow"},
                    )[2]
                finally:
                    if spinner:
                        spinner.kill()
                        spinner.wait()
                steady = statistics.mean(
                    json.loads(out.strip().splitlines()[-1])["epoch_seconds"][1:]
                )
                epochs[(name, busy)].append(steady)
                print(
                    f"{name} {'busy' if busy else 'quiet'}: {steady:.3f} s/epoch", file=sys.stderr
                )
    lines = [
        "| program | quiet s/epoch | beside one busy process s/epoch | busy / quiet |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in names:
        quiet, busy = (statistics.median(epochs[(name, b)]) for b in (False, True))
        lines.append(f"| {name} | {quiet:.3f} | {busy:.3f} | {busy / quiet:.2f} |")
    return f"Machine: {machine()}; medians of {reps} runs, steady epochs.\n\n" + "\n".join(lines)


def measure_startup(reps: int) -> dict[str, float]:
    py = sys.executable
    times: dict[str, list[float]] = {
        "import fmnist_core": [],
        "fmnist backends": [],
        "first data load": [],
        "cached data load": [],
    }
    load = (
        "import time, fmnist_core.data as d; t=time.perf_counter(); d.load_dataset(); "
        "print(time.perf_counter()-t)"
    )
    for _ in range(reps):
        times["import fmnist_core"].append(run_process([py, "-c", "import fmnist_core"])[0])
        times["fmnist backends"].append(run_process([py, "-m", "fmnist_core.cli", "backends"])[0])
        with tempfile.TemporaryDirectory() as cache:
            env = {"FMNIST_CACHE_DIR": cache}
            times["first data load"].append(float(run_process([py, "-c", load], env)[2]))
            times["cached data load"].append(float(run_process([py, "-c", load], env)[2]))
    return {k: statistics.median(v) for k, v in times.items()}


def summarise(results: dict[str, list[dict]]) -> list[dict]:
    median = {
        name: {
            key: statistics.median(r[key] for r in runs)
            for key in (
                "steady_epoch_seconds",
                "train_seconds",
                "wall_seconds",
                "peak_rss_mb",
                "test_accuracy",
            )
        }
        for name, runs in results.items()
        if runs
    }
    floor = median["floor"]["steady_epoch_seconds"]
    rows = []
    for name, group, role in programs():
        if name not in median:  # not among --programs
            continue
        m = median[name]
        article = median.get(f"article-{group}")
        hand = median.get(f"handwritten-{group}")
        row = {"program": name, "role": role, **m, "x_floor": m["steady_epoch_seconds"] / floor}
        if article and role != "article":
            row["speedup_vs_article"] = article["steady_epoch_seconds"] / m["steady_epoch_seconds"]
            row["wall_vs_article"] = m["wall_seconds"] / article["wall_seconds"]
        if hand and role == "fmnist":
            row["core_overhead_pct"] = 100 * (
                m["steady_epoch_seconds"] / hand["steady_epoch_seconds"] - 1
            )
        rows.append(row)
    return rows


def markdown(rows: list[dict], startup: dict[str, float], reps: int) -> str:
    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    lines = [
        "| program | steady epoch s | × faster than article | × floor | core overhead | train s | "
        "process wall s | wall / article | peak RSS MB | test accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['program']} | {r['steady_epoch_seconds']:.3f} | "
            f"{fmt(r.get('speedup_vs_article'), '.1f')} | "
            f"{r['x_floor']:.2f} | "
            f"{fmt(r.get('core_overhead_pct'), '+.0f')}{'%' if 'core_overhead_pct' in r else ''} | "
            f"{r['train_seconds']:.2f} | {r['wall_seconds']:.1f} | "
            f"{fmt(r.get('wall_vs_article'), '.2f')} | "
            f"{r['peak_rss_mb']:.0f} | {fmt(r['test_accuracy'], '.4f')} |"
        )
    lines += ["", "| start-up | seconds |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.3f} |" for k, v in startup.items()]
    lines += [
        "",
        f"Medians over {reps} round-robin repetitions; each program in its own process. "
        "`floor` is what a step cannot avoid (NumPy): the epoch gathered once into a contiguous "
        "copy, and per batch the two forward products and the first layer's weight gradient; "
        "`handwritten-*` is the same step written by hand in that framework without fmnist.",
    ]
    return "\n".join(lines)


def machine() -> str:
    import multiprocessing

    cpu = "unknown CPU"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for dist in ("numpy", "torch", "tensorflow", "keras"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            pass
    return (
        f"{cpu}, {multiprocessing.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; {', '.join(versions)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", help="also write this Markdown file (e.g. BENCHMARKS.md)")
    parser.add_argument("--json", default=str(HERE / "results" / "latest.json"))
    parser.add_argument(
        "--busy",
        action="store_true",
        help="only fmnist's programs, quiet and beside one busy process",
    )
    parser.add_argument(
        "--programs", nargs="+", help="only these programs (and the floor), e.g. fmnist-torch"
    )
    args = parser.parse_args()
    if args.busy:
        print(measure_busy(args.reps))
        return
    results = measure_programs(args.reps, args.programs)
    startup = measure_startup(args.reps)
    rows = summarise(results)
    table = markdown(rows, startup, args.reps)
    print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {"machine": machine(), "rows": rows, "startup": startup, "raw": results}, indent=2
        )
    )
    if args.write:
        Path(args.write).write_text(
            "# Benchmarks\n\nThe article's recipe (MLP 784-20-10, SGD 0.1, batch 64, 5 epochs) on "
            "the real data, "
            f"reproduced with `nox -s bench -- --reps {args.reps} --write BENCHMARKS.md`.\n\n"
            f"Machine: {machine()}.\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
