"""Request ids: every answer of /predict, /explain and /evaluate carries `X-Request-Id`, the
caller's own (printable, up to 128 characters) or a new one, sortable by time (a UUIDv7:
48 bits of milliseconds, then random bits), so that a prediction can be found again in the
access log, and labelled later. `/predict`'s JSON body says it too (`request_id`).

The hot path (`middleware/fast_predict.py`) makes its own from the headers it already reads;
`RequestIds` does it for the same routes through the full app, leaving the id in the scope's
state for the route and the access log.
"""

from __future__ import annotations

import random
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
ROUTES = frozenset({"/predict", "/explain", "/evaluate"})
MAX_CHARS = 128


def new_id() -> str:
    """A UUIDv7 (RFC 9562): ids made later sort after earlier ones. Its random bits name a
    request, they guard nothing: Python's generator (seeded per process) makes them, not a
    system call per request."""
    milliseconds = time.time_ns() // 1_000_000
    bits = random.getrandbits(74)
    value = (milliseconds & (2**48 - 1)) << 80 | 0x7 << 76 | (bits >> 62) << 64
    value |= 0b10 << 62 | bits & (2**62 - 1)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def request_id(given: bytes | None) -> str:
    """The caller's id if it is one a log line can hold whole, else a new one."""
    if given and len(given) <= MAX_CHARS and all(0x20 <= c < 0x7F for c in given):
        return given.decode("ascii")
    return new_id()


def given_id(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return bytes(value)
    return None


def id_of(scope: Scope) -> str | None:
    """The id of a request of the full app, once `RequestIds` has seen it."""
    state = scope.get("state")
    return state.get("request_id") if isinstance(state, dict) else None


class RequestIds:
    """The full app's half: an id for every request to ROUTES, in the scope's state and on
    the answer's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in ROUTES:
            await self.app(scope, receive, send)
            return
        rid = request_id(given_id(scope))
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)
