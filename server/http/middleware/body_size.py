"""BodySizeLimit: answer 413 to a body over the limit, without reading it whole into memory.

A declared `Content-Length` over the limit is refused before a byte is read; a chunked body
is counted as it arrives and refused as soon as it crosses the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = (
            f"request body is larger than the limit of {max_bytes / 2**20:g} MiB (MAX_BODY_MB)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"detail": self.detail}, status_code=413)(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route's body reading; FastAPI passes HTTPException on
                    # to its handler, which answers {"detail": ...} with this status.
                    raise HTTPException(status_code=413, detail=self.detail)
            return message

        await self.app(scope, counting_receive, send)
