"""SnapshotHub: what every open dashboard shows, made once a second whatever their number.

A page holds one event stream; each stream waits on the hub's next snapshot. The hub's
ticker runs only while a page is open, so a server nobody watches pays nothing. A snapshot
is encoded once per tick for each role that asks (`frames`): a stream costs one write of
bytes that every stream of its role shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

PERIOD_SECONDS = 1.0
logger = logging.getLogger(__name__)


class SnapshotHub:
    def __init__(self, build: Callable[[], dict[str, Any]], period: float = PERIOD_SECONDS) -> None:
        self._build = build
        self._period = period
        self._latest: dict[str, Any] | None = None
        self._frames: dict[str, bytes] = {}  # role -> the latest snapshot as an SSE event
        self._next = asyncio.Event()  # set (and replaced) when a new snapshot is out
        self._watchers = 0
        self._ticker: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        return self._watchers

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        """The current snapshot, then each new one, until the consumer stops."""
        self._watchers += 1
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        try:
            while True:
                waiting = self._next
                if self._latest is not None:
                    yield self._latest
                await waiting.wait()
        finally:
            self._watchers -= 1

    async def frames(self, role: str) -> AsyncIterator[bytes]:
        """`stream` as Server-Sent Events for a page of this role, each encoded once a tick."""
        async for snapshot in self.stream():
            frame = self._frames.get(role)
            if frame is None:
                data = orjson.dumps({**snapshot, "role": role})
                frame = self._frames[role] = b"event: snapshot\ndata: " + data + b"\n\n"
            yield frame

    async def _tick(self) -> None:
        while self._watchers > 0:
            try:
                self._latest, self._frames = self._build(), {}
            except Exception:  # the pages keep the last snapshot; the next tick tries again
                logger.exception("the dashboard's snapshot could not be built")
            done, self._next = self._next, asyncio.Event()
            done.set()
            await asyncio.sleep(self._period)  # the pace of the page, not a synchronisation

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
