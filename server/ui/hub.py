"""SnapshotHub: what every open dashboard shows, made once a second whatever their number.

A page holds one event stream; each stream waits on the hub's next snapshot. The hub's
ticker runs only while a page is open, so a server nobody watches pays nothing. A page gets
the whole snapshot once (`event: snapshot`), then only the parts that changed since what it
was last sent (`event: changes`: the top-level keys whose value differs, whole). Each part
is encoded once per tick for each role that asks, so a stream costs a comparison of bytes
per part and one write.
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
        self._parts: dict[str, dict[str, bytes]] = {}  # role -> the latest snapshot's parts
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
        """`stream` as Server-Sent Events for a page of this role: the first whole, then
        what changed since the page's last frame (nothing: no frame)."""
        sent: dict[str, bytes] | None = None
        async for _snapshot in self.stream():
            parts = self._parts.get(role)
            if parts is None:
                parts = self._parts[role] = self._encode(role)
            if sent is None:
                yield _event(b"snapshot", parts)
            elif changed := {key: part for key, part in parts.items() if sent.get(key) != part}:
                yield _event(b"changes", changed)
            sent = parts

    def _encode(self, role: str) -> dict[str, bytes]:
        assert self._latest is not None
        return {key: orjson.dumps(value) for key, value in {**self._latest, "role": role}.items()}

    async def _tick(self) -> None:
        while self._watchers > 0:
            try:
                self._latest, self._parts = self._build(), {}
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


def _event(kind: bytes, parts: dict[str, bytes]) -> bytes:
    data = b",".join(orjson.dumps(key) + b":" + part for key, part in parts.items())
    return b"event: " + kind + b"\ndata: {" + data + b"}\n\n"
