"""The server's limits and batching, and the error every part of it answers with."""

from dataclasses import dataclass

from ...data.images import MAX_PIXELS


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
