"""``fmnist export``: a deployable artifact (ONNX, int8 ONNX, torch.export, LiteRT, a web page),
run by its own runtime on the test set and kept only if it behaves like the source."""

from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument(
        "source", nargs="?", help="a run folder or a weights file (any format fmnist reads)"
    )
    p.add_argument("target", nargs="?", help="where to write it (the same as --out)")
    p.add_argument(
        "--format",
        default="onnx",
        help="the export target (default onnx; --list shows the installed ones)",
    )
    p.add_argument(
        "--out",
        help="file (or folder) to write; default: beside the source, the model's name with "
        "the target's suffix (--list shows each), in a run folder",
    )
    p.add_argument(
        "--no-gate",
        dest="gate",
        action="store_false",
        help="keep the export even if it differs from the source (its scores are still "
        "measured and recorded, marked as not enforced)",
    )
    p.add_argument(
        "--backend", help="backend that runs the source model (default: the one it records)"
    )
    p.add_argument("--list", action="store_true", help="list the export formats and exit")


def _list() -> int:
    from ..plugins import export_targets

    for target in export_targets().values():
        reason = target.unavailable_reason()
        state = f"unavailable: {reason}" if reason else target.runtime
        print(f"{target.name:<14} {target.description} [{state}]")
    return 0


def run(args) -> int:
    from ..apps.model_card import record_export
    from ..errors import ConfigError
    from ..plugins import get_export_target
    from ..training.checkpoints import weights_in
    from ..training.run_folder import RunFolder
    from ..training.trainer import Trainer

    if args.list:
        return _list()
    if args.source is None:
        raise ConfigError("fmnist export needs a run folder or a weights file", fix="see --help")
    if args.target and args.out and args.target != args.out:
        raise ConfigError(
            f"two destinations given: {args.target} and --out {args.out}", fix="give one"
        )
    target = get_export_target(args.format)  # an unknown format fails before anything is read
    source = Path(args.source)
    run_folder = source if RunFolder.holds_run(source) else None
    if (
        run_folder is None
        and source.name == RunFolder.WEIGHTS
        and RunFolder.holds_run(source.parent)
    ):
        run_folder = source.parent
    out = args.out or args.target
    if out is None:
        out = (
            target.default_path(run_folder)
            if run_folder is not None
            else target.default_path(source.parent, source.name.split(".")[0] or "model")
        )
    if run_folder is not None:
        RunFolder(run_folder).read_exports()  # a record it cannot keep: refused before writing
    trainer = Trainer.load(weights_in(source), backend=args.backend, verbose=0)
    result = trainer.export(out, format=target.name, gate=args.gate)
    print(f"wrote {result.path} ({target.name}, {result.size_bytes:,} bytes) from {args.source}")
    print(result.gate.summary())
    if run_folder is not None:
        record_export(run_folder, result)
        print(f"recorded in {RunFolder(run_folder).card} and {RunFolder.EXPORTS}")
    return 0
