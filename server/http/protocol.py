"""uvicorn's httptools protocol with the two timeouts it lacks.

uvicorn closes an idle keep-alive connection, but holds a request whose headers never end,
or whose body stops short of its Content-Length, for as long as the client likes: a few
hundred such connections would hold the server's sockets. Here a request's headers must
arrive within HEADER_TIMEOUT_SECONDS of its first byte (or of the connection, when nothing
comes), and its body must keep arriving, no gap longer than BODY_TIMEOUT_SECONDS. Past
either the client gets `408 Request Timeout` (if nothing was answered yet) and the
connection is closed; the route reading the body sees the client gone.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

TIMEOUT_BODY = b'{"detail":"the request did not arrive in time"}'


class TimedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0  # set from the settings by `configure`
    body_timeout: ClassVar[float] = 60.0

    _deadline: asyncio.TimerHandle | None = None
    _reading_body = False

    @classmethod
    def configure(cls, header_timeout: float, body_timeout: float) -> None:
        cls.header_timeout, cls.body_timeout = header_timeout, body_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_body:  # more of the body: the gap starts again
            self._arm(self.body_timeout)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self._has_body():
            self._reading_body = True
            self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._disarm()
        super().on_message_complete()

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return True
        return False

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[408],
                        b"content-type: application/json\r\n",
                        b"content-length: " + str(len(TIMEOUT_BODY)).encode() + b"\r\n",
                        b"connection: close\r\n\r\n",
                        TIMEOUT_BODY,
                    ]
                )
            )
        self.transport.close()
