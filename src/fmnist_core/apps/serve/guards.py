"""ASGI middleware around the app: the Host check (DNS rebinding), security headers, the
request limit, and the body's size and pace."""

import asyncio
import json

from .settings import BadRequest, ServeSettings

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
