"""``fmnist tune``: a hyper-parameter sweep on Ray Tune (``fmnist-core[tune]``)."""

from __future__ import annotations

from .common import print_json
from .settings import count_or_fraction_flag


def add_arguments(p) -> None:
    p.add_argument(
        "--space",
        action="append",
        metavar="NAME=KIND:ARGS",
        help="e.g. learning_rate=loguniform:0.01:0.5, batch_size=choice:32,64 (kinds: choice, "
        "grid, "
        "uniform, loguniform, randint; a plain value is fixed)",
    )
    p.add_argument("--config", metavar="TOML", help="a file with a [space] table")
    p.add_argument("--backend")
    p.add_argument("--model", help="the recipe or model spec to tune (default: the config's)")
    p.add_argument("--epochs", type=int, default=2, help="per trial (ASHA's maximum)")
    p.add_argument(
        "--num-samples",
        type=int,
        default=1,
        help="samples of the space (each grid point that often)",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="trials at once (default: as the CPUs allow)",
    )
    p.add_argument(
        "--scheduler",
        choices=["asha", "none"],
        default="none",
        help="asha stops poor trials early",
    )
    p.add_argument(
        "--validation",
        type=count_or_fraction_flag,
        default=5000,
        help="training images held out to score trials (a count or a fraction)",
    )
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs Ray gives each trial")
    p.add_argument("--gpus-per-trial", type=float, default=0, help="GPUs Ray gives each trial")
    p.add_argument(
        "--address", help="HOST:PORT of an existing Ray cluster's head (ray start --head …)"
    )
    p.add_argument(
        "--max-failures",
        type=int,
        default=0,
        help="times a failed trial is retried (e.g. when its node dies; default 0: recorded as "
        "failed)",
    )
    p.add_argument("--out", help="sweep folder (default sweeps/<timestamp>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --out")
    p.add_argument("--seed", type=int, default=0, help="of the search")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..apps.tune import load_space_file, parse_space, run_sweep
    from ..errors import ConfigError

    space = load_space_file(args.config) if args.config else {}
    space.update(parse_space(args.space or []))
    for name in ("backend", "model"):
        if getattr(args, name):
            space.setdefault(name, getattr(args, name))
    if not space:
        raise ConfigError(
            "an empty search space", fix="pass --space NAME=KIND:ARGS or --config sweep.toml"
        )
    result = run_sweep(
        space,
        epochs=args.epochs,
        num_samples=args.num_samples,
        max_concurrent=args.max_concurrent,
        scheduler=None if args.scheduler == "none" else args.scheduler,
        validation=args.validation,
        out=args.out,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        seed=args.seed,
        resume=args.resume,
        data_dir=args.data_dir,
        max_failures=args.max_failures,
    )
    if args.json:
        print_json(
            {
                "folder": str(result.folder),
                "seconds": result.seconds,
                "best": result.best,
                "trials": [{k: v for k, v in r.items() if k != "curve"} for r in result.rows],
            }
        )
        return 0
    print((result.folder / "sweep.md").read_text())
    if result.best:
        print(
            f"best: {result.best['trial']}, validation accuracy {result.best['val_accuracy']:.4f}, "
            f"test accuracy {result.best['test_accuracy']:.4f} (weights: "
            f"{result.folder / 'best.safetensors'})"
        )
    print(f"sweep folder {result.folder}, {result.seconds:.1f} s")
    return 0
