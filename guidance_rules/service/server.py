"""uvicorn's HTTP protocol with a deadline for a request's head: uvicorn has none, so a client
that connects and sends nothing, or a head a byte a minute, holds a connection open for ever.
The body's deadline is the app's (`app.BodyDeadline`), where a timely 408 can be answered."""

from __future__ import annotations

import asyncio
import functools

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .logs import event
from .settings import Settings


@functools.cache
def header_timeout() -> float:
    """Read once per worker from the environment `guidance-rules serve` set (as the app's settings)."""
    return Settings.from_env().header_timeout


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """A connection waiting for a request's head (just opened, or after an answer it kept
    alive for) is closed when the head is not complete within the header timeout."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._arm()  # a head is arriving: the keep-alive timer is no longer counting
        super().data_received(data)
        if not self._between_requests():
            self._disarm()  # the head is complete: the body's deadline is the app's

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(header_timeout(), self._expired)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expired(self) -> None:
        self._head_deadline = None
        if self._between_requests() and not self.transport.is_closing():
            event("request-head-timeout", client=":".join(map(str, self.client or ())), seconds=header_timeout())
            self.transport.close()
