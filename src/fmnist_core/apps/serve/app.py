"""The FastAPI application: routes, the page, the batcher's lifetime, errors as JSON."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import FmnistError
from ...labels import LABELS
from ...training.metrics import softmax
from .batching import MicroBatcher
from .decoding import _decode_all, _json_blobs, _png_base64
from .guards import BodyLimit, Guard
from .openapi import PREDICT_OPENAPI, docs_page
from .settings import BadRequest, ServeSettings

PAGE = Path(__file__).parent.parent / "page"  # the page at /: plain HTML, JS and CSS


def create_app(
    trainer, settings: ServeSettings | None = None, metadata: dict[str, Any] | None = None
):
    """The FastAPI application serving ``trainer``'s model."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    from ... import __version__

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
