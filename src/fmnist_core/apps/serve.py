"""``fmnist serve``: a trained model over HTTP (``fmnist-core[serve]``: FastAPI and uvicorn).

* ``POST /predict``: one or many images as multipart files (any field name), or JSON
  ``{"images": ["<base64 PNG>", ...]}``; answers ``{"predictions": [{"label", "index",
  "probabilities"}, ...]}`` in the order of the request.
* ``GET /health``, ``GET /metadata``; OpenAPI docs at ``/docs``.

Concurrent requests are micro-batched: the images that arrive within ``wait_ms`` (up to
``max_batch``) go through one forward pass, run in a worker thread, off the event loop. Bad input
is a 4xx with fmnist's one-line message and the server keeps serving; a failure inside the model
is a 500 with a short message, never a traceback.
"""

import asyncio
import base64
import binascii
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import FmnistError, ImageError
from ..labels import LABELS
from ..training.metrics import softmax


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of the server (``fmnist serve --help`` names the same)."""

    max_batch: int = 64
    wait_ms: float = 5.0
    max_bytes: int = 5_000_000  # per image
    max_files: int = 256  # per request
    max_pixels: int | None = None


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
    images = []
    for name, data in blobs:
        if len(data) > settings.max_bytes:
            raise BadRequest(
                413,
                f"{name} is {len(data):,} bytes, over the limit of {settings.max_bytes:,}; "
                "fix: send a smaller image",
            )
        try:
            images.append(image_from_bytes(data, name, settings.max_pixels))
        except ImageError as exc:
            raise BadRequest(400, str(exc)) from None
    return np.stack(images)


def _json_blobs(body: bytes) -> list[tuple[str, bytes]]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(
            400,
            f'the request body is not valid JSON ({exc}); fix: send {{"images": [base64, ...]}}',
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
    from fastapi.responses import JSONResponse

    from .. import __version__

    settings = settings or ServeSettings()
    batcher = MicroBatcher(trainer.logits, settings)
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

    app = FastAPI(
        title="fmnist",
        version=__version__,
        lifespan=lifespan,
        description="Fashion-MNIST classifier: POST images to /predict.",
    )
    app.state.batcher = batcher

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception):
        message = str(exc) if isinstance(exc, FmnistError) else type(exc).__name__
        return JSONResponse({"detail": f"the model failed: {message}"[:300]}, status_code=500)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata_():
        return info

    @app.post("/predict")
    async def predict(request: Request):
        """Images as multipart files, or JSON {"images": [base64 PNG, ...]}."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            form = await request.form(max_files=settings.max_files + 1)
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
        images = _decode_all(blobs, settings)
        logits = await batcher.submit(images)
        probabilities = softmax(logits)
        return {
            "predictions": [
                {"label": LABELS[int(i)], "index": int(i), "probabilities": [float(p) for p in row]}
                for i, row in zip(logits.argmax(axis=1), probabilities, strict=True)
            ]
        }

    return app


def app_from_env():
    """For ``uvicorn --workers N``: the app described by ``$FMNIST_SERVE`` (JSON)."""
    from ..training.trainer import Trainer

    config = json.loads(os.environ["FMNIST_SERVE"])
    trainer = Trainer.load(config["weights"], backend=config.get("backend"), verbose=0)
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
    try:
        import uvicorn
    except ImportError as exc:
        raise FmnistError(
            "fmnist serve needs FastAPI and uvicorn", fix='pip install "fmnist-core[serve]"'
        ) from exc
    from ..training.trainer import Trainer

    settings = settings or ServeSettings()
    trainer = Trainer.load(
        weights, backend=backend, verbose=0
    )  # a bad file is a one-line error before binding
    print(
        f"fmnist: serving {weights} on http://{host}:{port} (docs: http://{host}:{port}/docs)",
        flush=True,
    )
    if workers == 1:
        uvicorn.run(
            create_app(trainer, settings, {"weights": str(weights)}),
            host=host,
            port=port,
            log_level="warning",
        )
        return
    # several processes: uvicorn imports the app in each, from an import string
    os.environ["FMNIST_SERVE"] = json.dumps(
        {"weights": str(weights), "backend": backend, "settings": asdict(settings)}
    )
    uvicorn.run(
        "fmnist_core.apps.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
