"""uvicorn's h11 protocol for ``fmnist serve``, closing a connection that has not sent a
request's headers within ``$FMNIST_HEADER_TIMEOUT`` seconds (default 10) of opening or of its
last response: a slow client holds no slot. Its own module, named to uvicorn by an import
string, so that uvicorn's worker processes import it too."""

from __future__ import annotations

import os

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutH11Protocol(H11Protocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self._header_timer = None
        self._expect_headers()

    def _expect_headers(self):
        if self._header_timer is not None:
            self._header_timer.cancel()
        seconds = float(os.environ.get("FMNIST_HEADER_TIMEOUT", "10"))
        self._header_timer = self.loop.call_later(seconds, self._too_slow, self.cycle)

    def _too_slow(self, waiting):
        if self.cycle is waiting and not self.transport.is_closing():  # no request began
            self.transport.close()

    def on_response_complete(self):
        super().on_response_complete()
        if not self.transport.is_closing():
            self._expect_headers()

    def connection_lost(self, exc):
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)
