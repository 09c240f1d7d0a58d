"""``fmnist eject``: a model and its recipe as the article's plain programs, one per framework."""

from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("run", nargs="?", help="a run folder: its model, settings and trained weights")
    p.add_argument(
        "--model", help="a registered model's name or a spec.json (instead of a run folder)"
    )
    p.add_argument(
        "--to",
        default=None,
        metavar="FRAMEWORK",
        help="the framework to write: torch, tf, keras, one a plugin adds, or all (default: each "
        "one whose fmnist plugin is installed; all: every one, with PyTorch, TensorFlow and "
        "Keras side by side in MODEL.html and MODEL.md)",
    )
    p.add_argument("--out", help="folder to write into (default: ejected/MODEL)")
    p.add_argument("--seed", type=int, default=None, help="the seed of the initial weights and "
                   "batches (default: the run's, or the recipe's)")  # fmt: skip


def run(args) -> int:
    from ..apps.eject import FRAMEWORKS, check_frameworks, eject, installed, known_frameworks
    from ..apps.run import model_named
    from ..errors import ConfigError
    from ..training.trainer import Trainer

    if (args.run is None) == (args.model is None):
        raise ConfigError("fmnist eject needs a run folder or --model, not both", fix="see --help")
    settings = {} if args.seed is None else {"seed": args.seed}
    if args.run is not None:
        trainer = Trainer.load(args.run, verbose=0, **settings)
    else:
        trainer = Trainer(backend="numpy", model=model_named(args.model), verbose=0, **settings)
    every = known_frameworks()
    if args.to is None:
        to = [f for f in every if installed(f)]
        skipped = [f for f in FRAMEWORKS if f not in to]
        if not to:
            raise ConfigError(
                "fmnist eject writes each program's initial weights with that framework's fmnist "
                "plugin, and none is installed; nothing was written",
                fix="pip install 'fmnist-core[torch]' (or [tf], [keras])",
            )
        if skipped:
            print(
                f"fmnist eject: writing {', '.join(FRAMEWORKS.get(f, f) for f in to)}; skipped "
                f"{', '.join(FRAMEWORKS[f] for f in skipped)}, whose fmnist plugins are not "
                f"installed (pip install 'fmnist-core[{','.join(skipped)}]' adds them)"
            )
    else:
        to = every if args.to == "all" else [args.to]
        check_frameworks(to)
    out = Path(args.out or Path("ejected") / trainer.model.name)
    for path in eject(trainer, to, out):
        print(f"wrote {path}")
    first = out / to[0] / f"{trainer.model.name}.py"
    print(f"run one: python {first} --data /usr/share/datasets/fashion-mnist --steps 20")
    return 0
