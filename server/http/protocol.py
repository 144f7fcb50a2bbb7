"""uvicorn's httptools protocol with the two timeouts it lacks.

uvicorn closes an idle keep-alive connection, but holds a request whose headers never end,
or whose body stops short of its Content-Length, for as long as the client likes: a few
hundred such connections would hold the server's sockets. Here a request's headers must
arrive within `header_timeout` of its first byte (or of the connection, when nothing comes),
and its body must keep arriving, no gap longer than `body_timeout`. Past either the client
gets `408 Request Timeout` (if nothing was answered yet) and the connection is closed; the
route reading the body sees the client gone.

A timer armed and cancelled per request cost 1-row /predict throughput (see the performance
page), so a connection only notes what it waits for and since when, and one sweep a
`SWEEP_SECONDS` looks at them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

SWEEP_SECONDS = 0.5
TIMEOUT_BODY = b'{"detail":"the request did not arrive in time"}'
TIMEOUT_ANSWER = b"".join(
    [
        STATUS_LINE[408],
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(TIMEOUT_BODY)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        TIMEOUT_BODY,
    ]
)
HEADERS, BODY = "headers", "body"


class TimedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0  # set from the settings by `configure`
    body_timeout: ClassVar[float] = 60.0
    _sweeper: ClassVar[asyncio.Task[None] | None] = None

    _waiting: str | None = None  # HEADERS, BODY, or None: nothing is late
    _since = 0.0  # loop time of the last byte of what it waits for

    @classmethod
    def configure(cls, header_timeout: float, body_timeout: float) -> None:
        cls.header_timeout, cls.body_timeout = header_timeout, body_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait(HEADERS)
        sweeper = TimedHttpToolsProtocol._sweeper
        if sweeper is None or sweeper.done():
            TimedHttpToolsProtocol._sweeper = self.loop.create_task(_sweep(self.connections))

    def data_received(self, data: bytes) -> None:
        if self._waiting is BODY:  # more of the body: its gap starts again
            self._since = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._waiting is None:
            self._wait(HEADERS)

    def on_headers_complete(self) -> None:
        self._waiting = None
        super().on_headers_complete()
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                self._wait(BODY)
                break

    def on_message_complete(self) -> None:
        self._waiting = None
        super().on_message_complete()

    def _wait(self, what: str) -> None:
        self._waiting, self._since = what, self.loop.time()

    def late(self, now: float) -> bool:
        limit = self.header_timeout if self._waiting is HEADERS else self.body_timeout
        return self._waiting is not None and now - self._since > limit

    def time_out(self) -> None:
        self._waiting = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(TIMEOUT_ANSWER)
        self.transport.close()


async def _sweep(connections: Collection[object]) -> None:
    """Close every connection that waits too long for its headers or its body."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SWEEP_SECONDS)  # the timeouts' resolution, not a synchronisation
        now = loop.time()
        for connection in list(connections):
            if isinstance(connection, TimedHttpToolsProtocol) and connection.late(now):
                connection.time_out()
