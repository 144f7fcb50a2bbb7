"""SnapshotHub: what every open dashboard shows, made once a second whatever their number.

A page holds one event stream; each stream waits on the hub's next snapshot. The hub's
ticker runs only while a page is open, so a server nobody watches pays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

PERIOD_SECONDS = 1.0


class SnapshotHub:
    def __init__(self, build: Callable[[], dict[str, Any]], period: float = PERIOD_SECONDS) -> None:
        self._build = build
        self._period = period
        self._latest: dict[str, Any] | None = None
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

    async def _tick(self) -> None:
        while self._watchers > 0:
            self._latest = self._build()
            done, self._next = self._next, asyncio.Event()
            done.set()
            await asyncio.sleep(self._period)  # the pace of the page, not a synchronisation

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
