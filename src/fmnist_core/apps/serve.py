"""``fmnist serve``: a trained model over HTTP (``fmnist-core[serve]``: FastAPI and uvicorn).

* ``POST /predict``: one or many images as multipart files (any field name), or JSON
  ``{"images": ["<base64 PNG>", ...]}``; answers ``{"predictions": [{"name", "label", "index",
  "probabilities"}, ...]}`` in the order of the request (``?inputs=true``: each with ``input``,
  the 28×28 image the model was given, as a base64 PNG).
* ``GET /``: a page to try the model in a browser (choose, drop or draw an image; the top
  classes as probability bars), plain HTML, JavaScript and CSS served by the app itself.
* ``GET /health``, ``GET /metadata``; OpenAPI docs at ``/docs``.

Concurrent requests are micro-batched: the images that arrive within ``wait_ms`` (up to
``max_batch``) go through one forward pass, run in a worker thread, off the event loop; images
are decoded in a small pool of threads, off the event loop too, so ``/health`` answers while
they decode. Bad input is a 4xx with fmnist's one-line message and the server keeps serving; a
failure inside the model is a 500 with a short message, never a traceback.

Limits (``ServeSettings``, ``fmnist serve --help``): bytes per image and per request (the body is
counted as it arrives, so an oversized one costs nothing), images per request, declared pixels
per image and per request (read from the images' headers before any is decoded), a connection
must send its request headers within ``header_timeout`` seconds and may not stall its body for
``body_timeout`` (408), idle keep-alive connections close after ``keep_alive`` seconds, and at
most ``max_connections`` requests are served at once (more get a 503; a connection still sending
its headers costs a socket, not a place). A request whose ``Host`` is not one the server binds
(``allowed_hosts``: DNS rebinding) is a 400. Every response says ``nosniff`` and may not be
framed; the page may load nothing from elsewhere (Content-Security-Policy).
"""

import asyncio
import base64
import binascii
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import MAX_PIXELS
from ..errors import FmnistError, ImageError
from ..labels import LABELS
from ..training.metrics import softmax

PAGE = Path(__file__).parent / "page"  # the page at /: plain HTML, JS and CSS


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of the server (``fmnist serve --help`` names the same)."""

    max_batch: int = 64
    wait_ms: float = 5.0
    max_bytes: int = 5_000_000  # per image
    max_files: int = 256  # per request
    max_pixels: int = MAX_PIXELS  # per image
    max_request_bytes: int = 64_000_000  # a whole request body, counted as it arrives
    max_request_pixels: int = 64_000_000  # the declared pixels of one request's images
    decode_threads: int = 2  # images are decoded by this many threads, off the event loop
    header_timeout: float = 10.0  # seconds a connection has to send its request headers
    keep_alive: float = 5.0  # seconds an idle keep-alive connection stays open
    max_connections: int = 256  # requests served at once; more are answered 503
    body_timeout: float = 10.0  # seconds a request may leave its body stalled
    allowed_hosts: tuple[str, ...] | None = None  # Host headers served (None: any)
    tta: bool | None = None  # average each image's logits with its mirror's (None: the recipe's)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class MicroBatcher:
    """Collects concurrent requests' images into one forward pass."""

    def __init__(self, logits, settings: ServeSettings):
        self.logits, self.settings = logits, settings
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fmnist-inference")
        self.task: asyncio.Task | None = None
        self.batches = 0

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, images: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((images, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            count = len(items[0][0])
            deadline = loop.time() + self.settings.wait_ms / 1000
            while count < self.settings.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                items.append(item)
                count += len(item[0])
            batch = np.concatenate([images for images, _ in items])
            try:
                logits = await loop.run_in_executor(self.executor, self.logits, batch)
                self.batches += 1
            except Exception as exc:  # the model failed: every waiting request gets a 500
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for images, future in items:
                if not future.done():
                    future.set_result(logits[start : start + len(images)])
                start += len(images)


def _decode_all(blobs: list[tuple[str, bytes]], settings: ServeSettings) -> np.ndarray:
    from ..data.images import image_from_bytes

    if not blobs:
        raise BadRequest(
            400,
            'no images in the request; fix: send multipart files or JSON {"images": [base64, ...]}',
        )
    if len(blobs) > settings.max_files:
        raise BadRequest(
            413,
            f"{len(blobs)} images in one request, over the limit of {settings.max_files}; "
            "fix: send fewer per request",
        )
    for name, data in blobs:
        if len(data) > settings.max_bytes:
            raise BadRequest(
                413,
                f"{name} is {len(data):,} bytes, over the limit of {settings.max_bytes:,}; "
                "fix: send a smaller image",
            )
    declared = sum(_declared_pixels(data) for _, data in blobs)
    if declared > settings.max_request_pixels:
        raise BadRequest(
            413,
            f"the request's images declare {declared:,} pixels, over the limit of "
            f"{settings.max_request_pixels:,} per request; fix: send fewer or smaller images",
        )
    images = []
    for name, data in blobs:
        try:
            images.append(image_from_bytes(data, name, settings.max_pixels))
        except ImageError as exc:
            raise BadRequest(400, str(exc)) from None
    return np.stack(images)


_PREDICTION = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": list(LABELS)},
        "index": {"type": "integer", "minimum": 0, "maximum": len(LABELS) - 1},
        "probabilities": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": len(LABELS),
            "maxItems": len(LABELS),
        },
        "name": {
            "type": "string",
            "description": "which image: the file name sent (else its form field's name), or "
            "images[i] for JSON",
        },
        "input": {
            "type": "string",
            "format": "byte",
            "description": "with ?inputs=true: the 28×28 image the model was given, a PNG",
        },
    },
    "required": ["name", "label", "index", "probabilities"],
}
_ERROR = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}
        }
    }
}
PREDICT_OPENAPI = {
    "parameters": [
        {
            "name": "inputs",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean"},
            "description": "also return each image as the model was given it",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                    },
                    "description": "image files, any field names (PNG, JPEG, ...)",
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "byte"},
                            "description": "base64-encoded image files",
                        }
                    },
                    "required": ["images"],
                }
            },
        },
    },
    "responses": {
        "200": {
            "description": "one prediction per image, in the order sent",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"predictions": {"type": "array", "items": _PREDICTION}},
                    }
                }
            },
        },
        **{
            str(code): {"description": text, **_ERROR}
            for code, text in [
                (400, "an image that cannot be read, a bad request"),
                (408, "the body stalled"),
                (413, "over a size, count or pixel limit"),
                (415, "neither multipart/form-data nor application/json"),
                (503, "the server is at its limit of requests"),
            ]
        },
    },
}


def docs_page(openapi: dict) -> str:
    """The API as one plain HTML page, from its OpenAPI description: nothing loaded from
    anywhere (Swagger UI's page needs a CDN)."""
    import html

    def esc(value: object) -> str:
        return html.escape(str(value))

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(openapi['info']['title'])} API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}pre{background:#f4f4f4;padding:.6rem;overflow:auto}"
        "h2{margin-top:2rem}code{background:#f4f4f4}</style></head><body>",
        f"<h1>{esc(openapi['info']['title'])} {esc(openapi['info']['version'])}</h1>",
        f"<p>{esc(openapi['info'].get('description', ''))} "
        "The OpenAPI description: <a href='openapi.json'>openapi.json</a>.</p>",
    ]
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            text = operation.get("description") or operation.get("summary") or ""
            parts.append(f"<p>{esc(text)}</p>")
            for parameter in operation.get("parameters", []):
                parts.append(
                    f"<p>Query <code>{esc(parameter['name'])}</code>: "
                    f"{esc(parameter.get('description', ''))}</p>"
                )
            body = operation.get("requestBody", {}).get("content", {})
            for kind, content in body.items():
                schema = json.dumps(content.get("schema", {}), indent=2)
                parts.append(f"<h3>Request: {esc(kind)}</h3><pre>{esc(schema)}</pre>")
            for code, response in operation.get("responses", {}).items():
                parts.append(f"<h3>{esc(code)}: {esc(response.get('description', ''))}</h3>")
                for content in response.get("content", {}).values():
                    schema = json.dumps(content.get("schema", {}), indent=2)
                    parts.append(f"<pre>{esc(schema)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _png_base64(image: np.ndarray) -> str:
    """A 28×28 uint8 model input as a base64 PNG (the page shows it: what the model sees)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _declared_pixels(data: bytes) -> int:
    """The pixels an image's header declares (0 when it has none: decoding then says why)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not an image: image_from_bytes gives the one-line reason
        return 0
    return width * height


def _json_blobs(body: bytes) -> list[tuple[str, bytes]]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(
            400,
            f'the request body is not valid JSON ({exc}); fix: send {{"images": [base64, ...]}}',
        ) from None
    except RecursionError:
        raise BadRequest(
            400, 'the request body nests too deeply; fix: send {"images": [base64, ...]}'
        ) from None
    items = (
        payload.get("images", [payload["image"]] if "image" in payload else None)
        if isinstance(payload, dict)
        else None
    )
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise BadRequest(
            400, 'JSON must be {"images": ["<base64 PNG>", ...]}; fix: send that shape'
        )
    blobs = []
    for number, item in enumerate(items):
        try:
            blobs.append(
                (f"images[{number}]", base64.b64decode(item.split(",")[-1], validate=True))
            )
        except (binascii.Error, ValueError):
            raise BadRequest(
                400, f"images[{number}] is not valid base64; fix: base64-encode the PNG bytes"
            ) from None
    return blobs


def create_app(
    trainer, settings: ServeSettings | None = None, metadata: dict[str, Any] | None = None
):
    """The FastAPI application serving ``trainer``'s model."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    from .. import __version__

    settings = settings or ServeSettings()
    batcher = MicroBatcher(lambda images: trainer.logits(images, tta=settings.tta), settings)
    recorded = trainer.source_metadata.get("test_accuracy")
    info = {
        "model": trainer.model.name,
        "backend": trainer.backend.name,
        "parameters": trainer.model.count_params(),
        "test_accuracy": float(recorded) if recorded else None,
        "labels": list(LABELS),
        "fmnist_version": __version__,
        "settings": asdict(settings),
        **(metadata or {}),
    }
    trainer.logits(
        np.zeros((1, *trainer.model.input_shape), np.uint8)
    )  # build the engine before serving

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()
        decoder.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="fmnist",
        version=__version__,
        lifespan=lifespan,
        description="Fashion-MNIST classifier: POST images to /predict.",
        docs_url=None,  # Swagger UI loads from a CDN: /docs is fmnist's own page, offline
        redoc_url=None,
    )
    app.state.batcher = batcher
    decoder = ThreadPoolExecutor(
        max_workers=settings.decode_threads, thread_name_prefix="fmnist-decode"
    )
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, timeout=settings.body_timeout)
    app.add_middleware(Guard, settings=settings)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception):
        message = str(exc) if isinstance(exc, FmnistError) else type(exc).__name__
        return JSONResponse({"detail": f"the model failed: {message}"[:300]}, status_code=500)

    page = {name: (PAGE / name).read_bytes() for name in ("index.html", "page.js", "page.css")}
    kinds = {
        "html": "text/html; charset=utf-8",
        "js": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8",
    }

    @app.api_route("/", include_in_schema=False, methods=["GET", "HEAD"])
    async def index():
        return Response(page["index.html"], media_type=kinds["html"])

    @app.api_route("/page.{kind}", include_in_schema=False, methods=["GET", "HEAD"])
    async def asset(kind: str):
        name = f"page.{kind}"
        if name not in page:
            raise BadRequest(404, f"no {name} here; fix: open / for the page")
        return Response(page[name], media_type=kinds[kind])

    # GET is described in the OpenAPI document; HEAD answers the same, undescribed (one route
    # for both would give two operations one id, which FastAPI warns of when /docs is opened)
    async def health():
        return {"status": "ok"}

    async def metadata_():
        return info

    for path, endpoint, model in (
        ("/health", health, dict[str, str]),
        ("/metadata", metadata_, dict[str, Any]),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], response_model=model)
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def docs():
        return Response(docs_page(app.openapi()), media_type=kinds["html"])

    @app.post("/predict", openapi_extra=PREDICT_OPENAPI)
    async def predict(request: Request):
        """Images as multipart files, or JSON {"images": [base64 PNG, ...]}."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            fields = settings.max_files + 16
            try:
                form = await request.form(max_files=settings.max_files + 1, max_fields=fields)
            except Exception as exc:  # starlette's multipart limits and parse errors
                if isinstance(exc, BadRequest):
                    raise
                raise BadRequest(
                    413 if "Too many" in str(exc) else 400,
                    f"the form could not be read ({str(exc)[:80]}); the limits are "
                    f"{settings.max_files} files and {fields} fields per request; fix: send "
                    "fewer parts, one image file each",
                ) from None
            blobs = [
                (value.filename or key, await value.read())
                for key, value in form.multi_items()
                if hasattr(value, "read")
            ]
        elif kind.startswith("application/json"):
            blobs = _json_blobs(await request.body())
        else:
            raise BadRequest(
                415,
                f"content type {kind or 'none'!r} is not accepted; "
                "fix: send multipart/form-data files or application/json",
            )
        loop = asyncio.get_running_loop()
        images = await loop.run_in_executor(decoder, _decode_all, blobs, settings)
        logits = await batcher.submit(images)
        probabilities = softmax(logits)
        predictions = [
            {
                "name": name,
                "label": LABELS[int(i)],
                "index": int(i),
                "probabilities": [float(p) for p in row],
            }
            for (name, _), i, row in zip(blobs, logits.argmax(axis=1), probabilities, strict=True)
        ]
        if request.query_params.get("inputs") in ("1", "true"):  # what the model was given
            for prediction, image in zip(predictions, images, strict=True):
                prediction["input"] = _png_base64(image)
        return {"predictions": predictions}

    return app


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
PAGE_POLICY = (
    b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
OTHER_POLICY = b"frame-ancestors 'none'"


def default_allowed_hosts(host: str) -> tuple[str, ...] | None:
    """The ``Host`` names a server bound to ``host`` answers: a loopback address answers its
    loopback names; another address itself; all interfaces (``0.0.0.0``, ``::``) any."""
    if host in ("0.0.0.0", "::", ""):
        return None
    if host in ("localhost", "::1") or host.startswith("127."):
        return tuple(dict.fromkeys(("localhost", "127.0.0.1", "::1", host)))
    return (host,)


def _host_name(header: bytes) -> str:
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class Guard:
    """ASGI middleware, outermost: the ``Host`` check, the security headers on every response,
    and at most ``max_connections`` requests in the app at once (a 503 beyond)."""

    def __init__(self, app, settings: ServeSettings):
        self.app, self.settings, self.active = app, settings, 0
        allowed = settings.allowed_hosts
        self.allowed = None if allowed is None else {h.lower().strip("[]") for h in allowed}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        page = scope["path"] == "/" or scope["path"].startswith("/page.")

        async def secured(event):
            if event["type"] == "http.response.start":
                headers = [*event.get("headers", []), *SECURITY_HEADERS]
                headers.append((b"content-security-policy", PAGE_POLICY if page else OTHER_POLICY))
                event = {**event, "headers": headers}
            await send(event)

        host = dict(scope.get("headers") or []).get(b"host", b"")
        if self.allowed is not None and _host_name(host) not in self.allowed:
            shown = host.decode("latin-1")[:80]
            return await _refuse(
                secured,
                400,
                f"this server does not answer to Host {shown!r}; fix: use "
                f"http://{sorted(self.allowed)[0]}:PORT, or start it with --allowed-hosts",
            )
        if self.active >= self.settings.max_connections:
            return await _refuse(
                secured, 503, "the server is at its limit of requests; fix: retry shortly"
            )
        self.active += 1
        try:
            return await self.app(scope, receive, secured)
        finally:
            self.active -= 1


async def _refuse(send, status: int, message: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"detail": message}).encode()})


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, told from its declared
    length before any of it is read, else as soon as the bytes received pass the limit."""

    def __init__(self, app, limit: int, timeout: float = 10.0):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = (
            f"the request body is over the limit of {self.limit:,} bytes; fix: send "
            "fewer or smaller images per request"
        )
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await _refuse(send, 413, message)
        received = 0

        async def counted():
            nonlocal received
            try:
                event = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                raise BadRequest(
                    408,
                    f"the request body stalled for {self.timeout:g} s; fix: send it at once",
                ) from None
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    raise BadRequest(413, message)
            return event

        return await self.app(scope, counted, send)


def uvicorn_options(settings: ServeSettings, host: str, port: int) -> dict[str, Any]:
    """uvicorn's settings for ``fmnist serve``: its timeouts and connection limit."""
    # the protocol reads its timeout from the environment: uvicorn's worker processes inherit it
    os.environ["FMNIST_HEADER_TIMEOUT"] = str(settings.header_timeout)
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        "http": "fmnist_core.apps.serve_protocol:HeaderTimeoutH11Protocol",
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
    from .exported import open_model

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
    from .exported import open_model

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
