"""The hot path of `POST /predict`: a JSON body read, predicted and answered in one ASGI call.

Through FastAPI, a 1-row prediction crosses eight ASGI layers, the router and dependency
solving before it reaches the model, which cost several times the model's own time (see the
performance page, Ceiling). This path sits in front of all of that, FastAPI's own entry
included, and takes a JSON body (not a multipart upload) of at most the inline parse size,
for a JSON answer (no `Accept: text/csv`), that the guard (`guard`) would let through, with
a valid token when tokens are set.

What it declines goes on to the full app with the body already read handed back. What it
takes it answers, successes and refusals alike: a refusal (a bad body, an unknown or unloaded
model, the wrong width) with the very answer of the app's own handlers (server.http.errors),
so nothing is predicted twice. Each is counted once in the metrics and the access log, as
`POST /predict`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.types import Message, Receive, Scope, Send

from server.errors import ServiceError
from server.http.auth import Tokens
from server.http.csv_response import CSV
from server.http.errors import answer
from server.http.middleware.guard import GuardRules
from server.http.request_ids import HEADER, request_id
from server.ingest import INLINE_PARSE_BYTES
from server.ingest.json_body import predict_input
from server.ingest.limits import TableLimits
from server.service.operations import ModelService

ROUTE = "/predict"
JSON_HEADERS = [(b"content-type", b"application/json")]
Note = Callable[[str, str, int, float, str | None], None]


class PredictFastPath:
    """The ASGI app that uvicorn runs: this path, in front of the FastAPI app (`app`) that
    answers everything else. Its `state` and `router` are the FastAPI app's."""

    def __init__(
        self,
        app: FastAPI,
        service: Callable[[], ModelService | None],
        tokens: Tokens,
        note: Note | None,
        max_body_bytes: int,
        guard: GuardRules,
        limits: TableLimits,
    ) -> None:
        self.app = app
        self.state = app.state
        self.router = app.router
        self._limit = min(INLINE_PARSE_BYTES, max_body_bytes)
        self._service = service  # built in the lifespan, after this
        self._tokens = tokens
        self._note = note  # metrics and access log; None when both are off
        self._guard = guard
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if (
            scope["type"] != "http"
            or scope["path"] != ROUTE
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        taken, given = self._takes(scope)
        if not taken:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        messages, body_bytes = await _read(receive, self._limit)
        service = self._service()
        if body_bytes is None or service is None:  # declined: the full app reads the body
            await self.app(scope, _replay(messages, receive), send)
            return
        rid = request_id(given)
        try:
            prediction = await service.predict(predict_input(body_bytes, self._limits), rid)
        except (ServiceError, RequestValidationError) as error:  # answered as the app would
            refusal = answer(error)
            refusal.headers["x-request-id"] = rid
            await refusal(scope, receive, send)
            if self._note is not None:
                self._note("POST", ROUTE, refusal.status_code, time.perf_counter() - started, rid)
            return
        prediction["request_id"] = rid
        payload = orjson.dumps(prediction)
        headers = [
            *JSON_HEADERS,
            (b"content-length", str(len(payload)).encode()),
            (HEADER, rid.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        if self._note is not None:
            self._note("POST", ROUTE, 200, time.perf_counter() - started, rid)

    def _lifespan_send(self, send: Send) -> Send:
        """A start-up that failed for a reason the server told (`state.fatal`, one line)
        is reported by that line, not by the traceback Starlette would hand uvicorn."""

        async def reporting(message: Message) -> None:
            fatal = getattr(self.state, "fatal", None)
            if message["type"] == "lifespan.startup.failed" and fatal:
                message = {**message, "message": fatal}
            await send(message)

        return reporting

    def _takes(self, scope: Scope) -> tuple[bool, bytes | None]:
        """Whether this path answers: a JSON body and answer, nothing the guard refuses (one
        Authorization header, no Origin, an allowed Host), and (with tokens set) a valid
        bearer token; and the caller's request id, if it gave one."""
        authorization: bytes | None = None
        json_body = False
        host = b""
        given: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                json_body = self._guard.is_json(value)
            elif name == b"accept" and CSV in value.decode("latin-1").lower():
                return False, None
            elif name == b"authorization":
                if authorization is not None:  # a second one: the guard answers 400
                    return False, None
                authorization = value
            elif name == b"host":
                host = value
            elif name == HEADER:
                given = value
            elif name == b"origin":  # a browser's call: the guard decides, in the full app
                return False, None
        if not json_body or not self._guard.host_allowed(host):
            return False, None
        if self._tokens.open:
            return True, given
        role = self._tokens.role_of_header((authorization or b"").decode("latin-1"))
        return role is not None, given


async def _read(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages read, and the body if it came whole within `limit` bytes. Reading stops
    past the limit (the full app reads on, under the body size limit) or when the client goes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(message.get("body", b"") for message in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as if nothing had been read: the messages already taken, then the rest."""
    pending = deque(messages)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed
