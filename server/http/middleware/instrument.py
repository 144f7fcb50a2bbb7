"""One ASGI middleware that sees every request once: it counts it (metrics) and writes its
access log line, with the method, the route template, the status and the duration (and the
request id of the routes that have one, server.http.request_ids).

The route is the template the router matched (`/models/{name}`), read from the scope after
the app has answered, never the raw path; a path no route matched is `unmatched`, and a
method outside the usual few is `other`. So a label never carries a model name or whatever a
client typed, and the number of series stays bounded. Neither the log nor the labels ever
see a body, a query string or a header (tokens travel in one), but for the request id.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http.middleware.access_log import AccessLog
from server.http.request_ids import id_of
from server.metrics import Metrics

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
AccessLogFormat = Literal["text", "json", "off"]


class RequestLog:
    """What is noted of every answered request: its metrics and its access log line."""

    def __init__(self, metrics: Metrics, access_log: AccessLogFormat) -> None:
        self.metrics = metrics
        self.access_log = AccessLog(access_log) if access_log != "off" else None

    def note(
        self, method: str, route: str, status: int, seconds: float, request_id: str | None = None
    ) -> None:
        self.metrics.request(method, route, status, seconds)
        if self.access_log is not None:
            self.access_log.write(method, route, status, seconds, request_id)

    def close(self) -> None:
        if self.access_log is not None:
            self.access_log.close()


class Instrument:
    def __init__(self, app: ASGIApp, log: RequestLog, router: Router) -> None:
        self.app = app
        self.log = log
        self._router = router
        self._templates: dict[Any, str] | None = None  # endpoint -> its path template

    def route_of(self, scope: Scope) -> str:
        """The matched route's template. FastAPI's own routes leave themselves in the scope;
        plain Starlette ones (/openapi.json, /docs, the static assets) only their endpoint."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return "unmatched"
        if self._templates is None:  # every route exists once requests arrive
            self._templates = {
                getattr(route, "endpoint", getattr(route, "app", None)): route.path
                for route in self._router.routes
                if hasattr(route, "path")
            }
        return self._templates.get(endpoint, "unmatched")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            elapsed = time.perf_counter() - started
            self.log.note(method, self.route_of(scope), status, elapsed, id_of(scope))
