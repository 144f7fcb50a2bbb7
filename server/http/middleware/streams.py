"""StreamLimit: at most MAX_EVENT_STREAMS event streams open at once (jobs, AutoML searches,
the dashboard); one more is answered 503 with Retry-After at once.

Counted around the whole request, so a stream that ends in any way (finished, the client
gone, an error) gives its place back.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SUFFIX = "/events"


class StreamLimit:
    def __init__(self, app: ASGIApp, max_streams: int, retry_after: int) -> None:
        self.app = app
        self.max_streams = max_streams
        self.retry_after = retry_after
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(SUFFIX):
            await self.app(scope, receive, send)
            return
        if self.open >= self.max_streams:
            detail = (
                f"{self.max_streams} event streams are open already (MAX_EVENT_STREAMS): "
                "close one, or try again later"
            )
            headers = {"Retry-After": str(self.retry_after)}
            await JSONResponse({"detail": detail}, 503, headers)(scope, receive, send)
            return
        self.open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1
