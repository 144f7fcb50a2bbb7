"""The event streams of things that change until they finish (a training job, an AutoML
search): one event per change, the last one with the finished thing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from fastapi.sse import ServerSentEvent


class Changing(Protocol):
    version: int  # bumped on every change

    @property
    def finished(self) -> bool: ...

    def describe(self) -> dict[str, Any]: ...

    async def next_change(self, seen: int) -> None: ...


async def changes(subject: Changing, event: Callable[[], str]) -> AsyncIterator[ServerSentEvent]:
    # FastAPI sends a keep-alive comment every 15 s while nothing changes.
    seen = -1
    while True:
        if subject.version != seen:
            seen, finished = subject.version, subject.finished
            yield ServerSentEvent(data=subject.describe(), event=event(), id=str(seen))
            # `finished` as of this event: it may end while the event is being sent, and the
            # stream must then go on to send it finished.
            if finished:
                return
        await subject.next_change(seen)
