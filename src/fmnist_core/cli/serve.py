"""``fmnist serve``: a model over HTTP (``fmnist-core[serve]``)."""

from __future__ import annotations

import argparse


def add_arguments(p) -> None:
    from ..data.images import MAX_PIXELS

    p.add_argument("weights", help="any weights file an installed backend loads, .onnx included")
    p.add_argument("--backend")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--workers", type=int, default=1, help="server processes")
    p.add_argument(
        "--max-batch", type=int, default=64, help="images per forward pass (micro-batching)"
    )
    p.add_argument(
        "--wait-ms",
        type=float,
        default=5.0,
        help="how long a request waits for others to batch with",
    )
    p.add_argument("--max-bytes", type=int, default=5_000_000, help="largest image file accepted")
    p.add_argument("--max-files", type=int, default=256, help="most images in one request")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help="largest declared size of one image, in pixels (default %(default)s)",
    )
    limits = [
        ("--max-request-bytes", int, 64_000_000, "largest request body, counted as it arrives"),
        ("--max-request-pixels", int, 64_000_000, "most declared pixels of one request's images"),
        ("--header-timeout", float, 10.0, "seconds a connection has to send its request headers"),
        ("--keep-alive", float, 5.0, "seconds an idle keep-alive connection stays open"),
        ("--body-timeout", float, 10.0, "seconds a request may leave its body stalled (408)"),
        ("--max-connections", int, 256, "requests served at once; more are answered 503"),
    ]
    p.add_argument(
        "--allowed-hosts",
        nargs="+",
        metavar="HOST",
        help="Host headers answered, or * for any (default: the names of the address bound: "
        "127.0.0.1, localhost and ::1 for loopback; any for 0.0.0.0)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's prediction with its mirror image's (default: the recipe's)",
    )
    for flag, kind, default, text in limits:
        p.add_argument(flag, type=kind, default=default, help=f"{text} (default {default:,})")


def run(args) -> int:
    from ..apps.serve import ServeSettings, default_allowed_hosts, serve

    settings = ServeSettings(
        max_batch=args.max_batch,
        wait_ms=args.wait_ms,
        max_bytes=args.max_bytes,
        max_files=args.max_files,
        max_pixels=args.max_pixels,
        max_request_bytes=args.max_request_bytes,
        max_request_pixels=args.max_request_pixels,
        header_timeout=args.header_timeout,
        keep_alive=args.keep_alive,
        max_connections=args.max_connections,
        body_timeout=args.body_timeout,
        allowed_hosts=(
            default_allowed_hosts(args.host)
            if args.allowed_hosts is None
            else None
            if "*" in args.allowed_hosts
            else tuple(args.allowed_hosts)
        ),
        tta=args.tta,
    )
    serve(
        args.weights,
        backend=args.backend,
        host=args.host,
        port=args.port,
        workers=args.workers,
        settings=settings,
    )
    return 0
