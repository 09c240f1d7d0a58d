"""``fmnist sample``: write dataset images as PNG files (and labels.csv) into a folder."""

from __future__ import annotations

from .common import checksum_flags, print_json


def add_arguments(p) -> None:
    p.add_argument("out", help="folder to write into (created)")
    p.add_argument(
        "--split", default="test", choices=["test", "train"], help="which images to take"
    )
    p.add_argument("--count", type=int, default=10, help="how many PNG files to write")
    p.add_argument("--start", type=int, default=0, help="index of the first image")
    p.add_argument("--data-dir")
    checksum_flags(p)
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    from ..data import load_dataset
    from ..data.images import save_samples

    data = load_dataset(args.data_dir, verify=not args.skip_checksums)
    written = save_samples(getattr(data, args.split), args.out, count=args.count, start=args.start)
    if args.json:
        print_json(
            [{"path": str(path), "index": index, "label": label} for path, index, label in written]
        )
    else:
        print(f"{len(written)} {args.split} images written, each with its true label:")
        for path, index, label in written:
            print(f"  {path}  (true label: {label}, {args.split} image {index})")
    return 0
