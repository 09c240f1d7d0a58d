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

from .app import create_app
from .guards import BodyLimit, Guard, default_allowed_hosts
from .openapi import PREDICT_OPENAPI, docs_page
from .settings import BadRequest, ServeSettings
from .startup import app_from_env, serve, uvicorn_options

__all__ = [
    "PREDICT_OPENAPI",
    "BadRequest",
    "BodyLimit",
    "Guard",
    "ServeSettings",
    "app_from_env",
    "create_app",
    "default_allowed_hosts",
    "docs_page",
    "serve",
    "uvicorn_options",
]
