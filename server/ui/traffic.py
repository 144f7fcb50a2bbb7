"""Request rate and /predict's p99 over the last second, from the server's own counters
(server.metrics.Traffic), and the last minute of them for the dashboard's chart."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from server.metrics import Traffic

POINTS = 60


def p99_upper_bound(before: Traffic, after: Traffic) -> float | None:
    """The smallest histogram bound under which 99% of the /predict answers between the two
    readings fell (seconds), or None if there were none. Upper bounds: the histogram can't
    tell more."""
    earlier = dict(before.predict_buckets)
    counts = [(bound, total - earlier.get(bound, 0.0)) for bound, total in after.predict_buckets]
    if not counts or counts[-1][1] <= 0:
        return None
    target = 0.99 * counts[-1][1]
    return next((bound for bound, count in counts if count >= target), None)


class TrafficWindow:
    def __init__(self) -> None:
        self._last: tuple[float, Traffic] | None = None
        self.points: deque[dict[str, Any]] = deque(maxlen=POINTS)

    def add(self, reading: Traffic, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._last is not None:
            then, before = self._last
            p99 = p99_upper_bound(before, reading)
            self.points.append(
                {
                    "requests_per_second": round(
                        (reading.requests - before.requests) / (now - then), 1
                    ),
                    "predict_p99_ms": None if p99 is None or math.isinf(p99) else p99 * 1e3,
                }
            )
        self._last = (now, reading)
