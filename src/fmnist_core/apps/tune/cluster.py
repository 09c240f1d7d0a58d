"""A Ray cluster's address checked before a sweep uses it: a one-line answer in seconds."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from ...errors import ConfigError

TOKEN_FIX = (
    "on a cluster started with token authentication, give this driver the head's token: "
    "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the output of `ray get-auth-token` on the head> "
    "(or RAY_AUTH_TOKEN_PATH=<a file holding it>)"
)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_grpc(connection, timeout: float) -> bool:
    """Whether the listener speaks HTTP/2, as Ray's GCS (gRPC) does: it answers the client
    preface with a SETTINGS frame at once; a listener that is not Ray stays silent or says
    something else, and Ray's own client would retry it for most of a minute."""
    connection.settimeout(timeout)
    try:
        connection.sendall(HTTP2_PREFACE)
        reply = connection.recv(9)
    except OSError:
        return False
    return len(reply) == 9 and reply[3] == 4  # frame type 4: SETTINGS


def check_cluster(address: str, timeout: float = 5.0) -> dict[str, Any]:
    """Whether the Ray cluster at ``address`` (``HOST:PORT``, ``ray start --head``'s) answers,
    accepts this driver's token and runs this driver's Ray and Python; one ``ConfigError``
    naming the address and the fix otherwise, in seconds rather than Ray's minutes of retries.
    Returns the cluster's recorded versions."""
    import socket

    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(
            f"--address {address!r} is not HOST:PORT",
            fix="give the head node's address and port, e.g. --address 10.0.0.5:6379",
        )
    host = host.strip("[]")
    try:
        connection = socket.create_connection((host, int(port_text)), timeout=timeout)
    except (UnicodeError, ValueError) as exc:  # a label over 63 characters, a NUL…
        raise ConfigError(
            f"--address {address[:80]!r}: {host[:60]!r} is not a valid host name ({exc})"[:300],
            fix="give the head node's IP address or DNS name, e.g. --address 10.0.0.5:6379",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__})",
            fix=f"start one there with `ray start --head --node-ip-address {host} --port "
            f"{port_text}`, or check the address and that this machine can reach that port",
        ) from exc
    with connection:
        if os.environ.get("RAY_USE_TLS", "0") in ("0", "") and not _answers_grpc(
            connection, timeout
        ):
            raise ConfigError(
                f"{address} accepts connections but does not answer as a Ray cluster's head "
                f"(no gRPC reply within {timeout:g} s)",
                fix="give the port of `ray start --head --port PORT` (default 6379)",
            )
    from ray._common.usage.usage_lib import get_cluster_metadata
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        with _quiet_stderr():  # Ray's C++ client logs each refused attempt
            metadata = get_cluster_metadata(GcsClient(address=address, cluster_id=None)) or {}
    except AuthenticationError as exc:
        given = os.environ.get("RAY_AUTH_MODE") == "token"
        raise ConfigError(
            f"the Ray cluster at {address} refused this driver: its token is "
            + ("not the cluster's" if given else "missing (RAY_AUTH_MODE is not 'token')"),
            fix=TOKEN_FIX,
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"{address} answers but not as a Ray cluster's head ({type(exc).__name__})",
            fix="give the port of `ray start --head --port PORT` (default 6379)",
        ) from exc
    from ray._private.utils import check_version_info, compute_version_info

    try:  # Ray's own rule (RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL), Ray's own versions
        if metadata:
            check_version_info(metadata, "this driver", raise_on_mismatch=True)
    except RuntimeError as exc:
        theirs = (metadata.get("ray_version"), metadata.get("python_version"))
        ours = compute_version_info()
        raise ConfigError(
            f"the Ray cluster at {address} runs Ray {theirs[0]} on Python {theirs[1]}, this "
            f"driver Ray {ours[0]} on Python {ours[1]}; Ray needs the same on every process",
            fix=f"run fmnist tune with Python {theirs[1]} and `pip install ray[tune]=={theirs[0]}`"
            ", or start the cluster with this machine's versions",
        ) from exc
    return metadata


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for a while: native libraries write there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
