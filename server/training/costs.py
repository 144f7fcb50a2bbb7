"""What an AutoML candidate costs to serve: microseconds per row on the runtime that would
serve it (its compiled copy where its check passed, else its estimator), timed in the
training process on the held-out rows, the same way for every candidate."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from server.algorithms import Algorithm
from server.inference.compiled.convert import Compiled
from server.inference.compiled.runtimes import NativeRuntime, OnnxRuntime

TIMES = 5


def predict_cost(
    estimator: Any,
    algorithm: Algorithm,
    compiled: Compiled,
    serving: dict[str, Any] | None,
    rows: np.ndarray,
) -> float:
    """The median of TIMES predictions of `rows` in one batch, per row, in microseconds."""
    runtime: OnnxRuntime | NativeRuntime
    if serving is not None and compiled.onnx is not None:
        runtime = OnnxRuntime(compiled.onnx)
    else:
        runtime = NativeRuntime(estimator, algorithm.predict_kwargs, algorithm)
    runtime.indices(rows)  # warm up: the first call allocates
    samples = []
    for _ in range(TIMES):
        started = time.perf_counter()
        runtime.indices(rows)
        samples.append(time.perf_counter() - started)
    return round(float(np.median(samples)) / len(rows) * 1e6, 3)
