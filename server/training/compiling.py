"""A fit's compiled copy: converted, checked against the estimator as the check at load will
check it, and the rows that check runs on kept with the model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from server.algorithms import Algorithm
from server.inference.compiled.choice import checked, record, with_routing
from server.inference.compiled.convert import Compiled, compile_estimator
from server.inference.compiled.runtimes import NativeRuntime
from server.ml.progress import ProgressSink

CHECK_ROWS = 256
CHECK_ROWS_WITH_MISSING = 64


def compile_checked(
    algorithm: Algorithm,
    estimator: Any,
    rows: np.ndarray,
    progress: ProgressSink,
    domains: dict[int, np.ndarray] | None = None,
) -> tuple[Compiled, dict[str, Any] | None]:
    """The ONNX copy, kept only if it answers as the estimator does on `rows` (what the
    estimator computes on, `check_rows`) and the probes (the check at load, run here too,
    so that a copy that can't serve is neither stored nor waited for), and the check's
    verdict (a server on the same platform serves the copy on it, without reading the
    estimator)."""
    progress.phase("compiling")
    compiled = compile_estimator(algorithm, estimator, int(rows.shape[1]))
    serving = None
    if compiled.onnx is not None:
        progress.phase("checking")
        started = time.perf_counter()
        native = NativeRuntime(estimator, algorithm.predict_kwargs, algorithm)
        choice = with_routing(checked(native, compiled.onnx, rows, algorithm, domains), rows)
        failure = None if choice.compiled is not None else choice.detail
        # The check's seconds include the timing that decides the routing: both are the
        # check at load, run here.
        compiled = compiled.checked(failure, time.perf_counter() - started)
        serving = record(choice)
    return compiled, serving


def check_rows(X: np.ndarray, categorical: list[int], levels: list[int]) -> np.ndarray:
    """Training rows kept with the model for the compiled model's check at load: a random
    sample, with up to a quarter of rows that have missing values where the data has any;
    and rows with each categorical column at every level and at missing (an unseen level
    arrives as missing)."""
    rng = np.random.default_rng(0)
    has_missing = np.isnan(X).any(axis=1)
    with_missing = np.flatnonzero(has_missing)
    complete = np.flatnonzero(~has_missing)
    take_complete = min(len(complete), CHECK_ROWS - min(len(with_missing), CHECK_ROWS_WITH_MISSING))
    take_missing = min(len(with_missing), CHECK_ROWS - take_complete)
    chosen = np.concatenate(
        [
            rng.choice(complete, take_complete, replace=False),
            rng.choice(with_missing, take_missing, replace=False),
        ]
    )
    sample = np.array(X[np.sort(chosen)], dtype=np.float64)
    at_levels = [sample]
    for column, count in zip(categorical, levels, strict=True):
        values = np.append(np.arange(count, dtype=np.float64), np.nan)
        rows = sample[np.arange(len(values)) % len(sample)].copy()
        rows[:, column] = values
        at_levels.append(rows)
    return np.vstack(at_levels)
