"""Starting the server: uvicorn's settings, one process or several."""

import json
import os
from dataclasses import asdict
from typing import Any

from ...errors import FmnistError
from .app import create_app
from .settings import ServeSettings


def uvicorn_options(settings: ServeSettings, host: str, port: int) -> dict[str, Any]:
    """uvicorn's settings for ``fmnist serve``: its timeouts and connection limit."""
    # the protocol reads its timeout from the environment: uvicorn's worker processes inherit it
    os.environ["FMNIST_HEADER_TIMEOUT"] = str(settings.header_timeout)
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "http": "fmnist_core.apps.serve.protocol:HeaderTimeoutH11Protocol",
        "timeout_keep_alive": max(1, round(settings.keep_alive)),
        # connections, as opposed to requests (Guard counts those): sockets still sending their
        # headers are reaped by the header timeout; this caps them below the file limit
        "limit_concurrency": max(settings.max_connections, _socket_cap()),
    }


def _socket_cap() -> int:
    """Connections uvicorn may hold: up to 4,096, leaving files for everything else."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 4096 if soft == resource.RLIM_INFINITY else max(64, min(4096, soft // 2))


def app_from_env():
    """For ``uvicorn --workers N``: the app described by ``$FMNIST_SERVE`` (JSON)."""
    from ..exported import open_model

    config = json.loads(os.environ["FMNIST_SERVE"])
    trainer = open_model(config["weights"], config.get("backend"))
    return create_app(
        trainer, ServeSettings(**config.get("settings", {})), {"weights": config["weights"]}
    )


def serve(
    weights: str,
    backend: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: ServeSettings | None = None,
) -> None:
    """Run the server until interrupted (``fmnist serve``)."""
    from ..exported import open_model

    settings = settings or ServeSettings()
    trainer = open_model(weights, backend)  # a bad file is a one-line error, checked first
    try:
        import uvicorn
    except ImportError as exc:
        raise FmnistError(
            "fmnist serve needs FastAPI and uvicorn", fix='pip install "fmnist-core[serve]"'
        ) from exc
    print(
        f"fmnist: serving {weights} on http://{host}:{port} (docs: http://{host}:{port}/docs)",
        flush=True,
    )
    options = uvicorn_options(settings, host, port)
    if workers == 1:
        uvicorn.run(create_app(trainer, settings, {"weights": str(weights)}), **options)
        return
    # several processes: uvicorn imports the app in each, from an import string
    os.environ["FMNIST_SERVE"] = json.dumps(
        {"weights": str(weights), "backend": backend, "settings": asdict(settings)}
    )
    uvicorn.run("fmnist_core.apps.serve:app_from_env", factory=True, workers=workers, **options)
