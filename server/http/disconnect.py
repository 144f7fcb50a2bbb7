"""Work that nobody waits for is not done: a request's operation raced against its client
hanging up.

Once a request's body is read, the server's next `receive()` answers only when the client
disconnects (as Starlette's StreamingResponse listens for it). A client that leaves cancels
the operation: what had not started (an explanation waiting its turn) never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import Request

from server.errors import ServiceError

T = TypeVar("T")
CLIENT_CLOSED = 499  # nginx's code for a client that closed the connection; never sent


class ClientGone(ServiceError):
    status_code = CLIENT_CLOSED


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, operation: Coroutine[Any, Any, T]) -> T:
    """The operation's result; ClientGone (and the operation cancelled) if the client
    hangs up first."""
    work = asyncio.ensure_future(operation)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping
        work.cancel()
        raise
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
    if not work.done():
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, ServiceError):
            await work
        raise ClientGone("the client closed the connection before the answer")
    return work.result()
