"""``fmnist convert``: weights from one format into another (any installed plugin's)."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--to", help="target format (default: by the target's suffix)")
    p.add_argument("--from", dest="from_format", help="source format (default: detected)")


def run(args) -> int:
    from ..io.formats import read_weights, write_weights
    from ..io.weights import architecture_of

    weights = read_weights(args.source, args.from_format)
    weights.params = architecture_of(weights).check_params(weights.params, source=str(args.source))
    fmt = write_weights(args.target, weights, args.to)
    print(f"wrote {args.target} ({fmt.name}) from {args.source}")
    return 0
