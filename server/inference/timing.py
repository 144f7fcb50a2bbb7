"""What one predict call costs: a part fixed per call plus a part per row, from two timings.

Used at load, for the batcher's inline estimate (`server.inference`) and to find where an
estimator overtakes its compiled copy (`server.inference.compiled.choice`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CallCost:
    fixed: float  # seconds per call, whatever its size
    per_row: float  # seconds per row

    def seconds(self, rows: int) -> float:
        return self.fixed + self.per_row * rows


def measure_cost(predict: Callable[[np.ndarray], Any], batch: np.ndarray, times: int) -> CallCost:
    """Time `predict` on one row and on all of `batch` (the fastest of `times` calls each,
    after a call that warms up), and split the cost into its fixed and per-row parts."""
    one, many = (fastest(predict, rows, times) for rows in (batch[:1], batch))
    per_row = max(0.0, (many - one) / (len(batch) - 1))
    return CallCost(one - per_row, per_row)


def fastest(predict: Callable[[np.ndarray], Any], X: np.ndarray, times: int) -> float:
    """The fastest of `times` calls of `predict` on X, after one that warms up."""
    predict(X)  # warm: first calls allocate
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        predict(X)
        best = min(best, time.perf_counter() - started)
    return best
