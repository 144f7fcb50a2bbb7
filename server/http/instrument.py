"""One ASGI middleware that sees every request once: it counts it (metrics) and writes its
access log line, with the method, the route template, the status and the duration.

The route is the template the router matched (`/models/{name}`), read from the scope after
the app has answered, never the raw path; a path no route matched is `unmatched`, and a
method outside the usual few is `other`. So a label never carries a model name or whatever a
client typed, and the number of series stays bounded. Neither the log nor the labels ever
see a body, a query string or a header (tokens travel in one).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal

from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics

access_logger = logging.getLogger("server.access")

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
AccessLogFormat = Literal["text", "json", "off"]


class Instrument:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, access_log: AccessLogFormat, router: Router
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
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
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = self.route_of(scope)
            self.metrics.request(method, route, status, seconds)
            if self.access_log != "off":
                self._log(method, route, status, seconds)

    def _log(self, method: str, route: str, status: int, seconds: float) -> None:
        milliseconds = round(seconds * 1000, 2)
        if self.access_log == "json":
            access_logger.info(
                json.dumps({"method": method, "route": route, "status": status, "ms": milliseconds})
            )
        else:
            access_logger.info("%s %s %d %.2f ms", method, route, status, milliseconds)
