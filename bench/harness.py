"""What every benchmark shares: repeated timing, a bounded load generator, tables.

Absolute times are shown but never judged: these machines are noisy. A figure is the median
of repeated runs with its min-max, and each is compared with its in-process floor.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from client.report import percentile, table

__all__ = ["LoadResult", "Spread", "load", "repeat", "show", "table", "timed_post"]


@dataclass(frozen=True)
class Spread:
    """The median of repeated measurements, with their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def ms(self) -> str:
        return f"{self.median * 1e3:.1f} ({self.low * 1e3:.1f}-{self.high * 1e3:.1f})"

    def s(self) -> str:
        return f"{self.median:.3f} ({self.low:.3f}-{self.high:.3f})"


def repeat(measure: Callable[[], float], times: int) -> Spread:
    return Spread.of([measure() for _ in range(times)])


async def timed_post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    expect: int,
    content_type: str = "application/json",
) -> float:
    """Seconds for one POST of a pre-encoded body, from sending to the whole answer."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"content-type": content_type}) as reply:
        await reply.read()
        if reply.status != expect:
            raise RuntimeError(
                f"POST {url}: {reply.status}, expected {expect}: {await reply.text()}"
            )
    return time.perf_counter() - started


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


async def load(
    send: Callable[[], Awaitable[float]], concurrency: int, requests: int, max_seconds: float
) -> LoadResult:
    """`requests` calls of `send`, `concurrency` in flight, stopping early after `max_seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            latencies.append(await send())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(len(latencies), time.perf_counter() - started, latencies)


# Every table shown since the last `take_tables()`: bench.run files them under their section
# in the results, and bench.report makes the performance page of them.
_SHOWN: list[dict[str, Any]] = []


def show(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n{title}")
    print(table(headers, rows))
    _SHOWN.append(
        {"title": title, "headers": list(headers), "rows": [list(map(str, r)) for r in rows]}
    )


def take_tables() -> list[dict[str, Any]]:
    taken = list(_SHOWN)
    _SHOWN.clear()
    return taken
