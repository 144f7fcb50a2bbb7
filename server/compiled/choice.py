"""Which runtime serves a model being loaded, and why (shown by GET /models/{name}).

A compiled model that passes its check is not always the faster one for every batch: ONNX
Runtime's tree ensemble is 60x faster than XGBoost's own predict for one row, but 15%
slower for 100 (measured). So both are timed at 1 and `TIMING_ROWS` rows, and when the
estimator's cost per row is lower, batches from the crossing point on go to the estimator,
which is then kept. Otherwise the estimator is dropped: one copy of the model in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from server.compiled.runtimes import NativeRuntime, OnnxRuntime, Runtime
from server.compiled.verify import verify
from server.timing import measure_cost

RuntimeSetting = Literal["auto", "native"]


TIMING_ROWS = 256


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: Runtime  # serves every batch...
    missing_rows: Runtime | None  # ...but those with missing values, when this is set...
    detail: str
    large_batches: Runtime | None = None  # ...and those of `large_from` rows or more
    large_from: int = 0

    def for_batch(self, X: np.ndarray) -> Runtime:
        if self.missing_rows is not None and np.isnan(X).any():
            return self.missing_rows
        if self.large_batches is not None and len(X) >= self.large_from:
            return self.large_batches
        return self.runtime

    def describe(self) -> dict[str, Any]:
        return {"runtime": self.runtime.name, "runtime_detail": self.detail}


def choose_runtime(
    native: NativeRuntime, bundle: dict[str, Any], setting: RuntimeSetting, handles_missing: bool
) -> RuntimeChoice:
    """The compiled model if it passes the check on the kept rows; else the estimator, with
    the reason. Blocking (a session start and a few predictions)."""
    if setting == "native":
        return RuntimeChoice(native, None, "INFERENCE_RUNTIME=native")
    if "onnx" not in bundle:
        return RuntimeChoice(native, None, "saved without a compiled model (before v2.1)")
    if bundle["onnx"] is None:
        return RuntimeChoice(native, None, str(bundle.get("onnx_error")))
    try:
        compiled = OnnxRuntime(bundle["onnx"])
        rows = np.asarray(bundle["check_rows"], dtype=np.float64)
        verdict = verify(native, compiled, rows, handles_missing)
    except Exception as error:  # a session that can't start or run: serve the estimator
        return RuntimeChoice(
            native, None, f"ONNX Runtime failed: {type(error).__name__}: {error}"[:500]
        )
    if verdict.complete_rows is not None:
        return RuntimeChoice(
            native,
            None,
            f"the compiled model disagreed with the estimator: {verdict.complete_rows}; "
            f"{verdict.detail}",
        )
    detail = verdict.detail
    missing_rows: Runtime | None = None
    if verdict.missing_rows is not None:
        missing_rows = native
        detail += (
            "; batches with missing values go to the estimator, on which the compiled model "
            f"disagreed: {verdict.missing_rows}"
        )
    large_from = _estimator_faster_from(native, compiled, rows)
    if large_from == 1:
        return RuntimeChoice(native, None, f"{detail}; but the estimator is faster at every size")
    if large_from is None:
        return RuntimeChoice(compiled, missing_rows, detail)
    detail += f"; batches of {large_from} rows or more go to the estimator (faster there)"
    return RuntimeChoice(compiled, missing_rows, detail, native, large_from)


def _estimator_faster_from(
    native: NativeRuntime, compiled: OnnxRuntime, rows: np.ndarray
) -> int | None:
    """The batch size from which the estimator predicts faster than the compiled model
    (each timed at 1 and TIMING_ROWS rows, a cost fixed per call plus one per row), or
    None if it never does."""
    complete = rows[~np.isnan(rows).any(axis=1)]
    if not len(complete):
        complete = np.zeros((1, rows.shape[1]))
    batch = np.resize(complete, (TIMING_ROWS, rows.shape[1]))
    ours, theirs = (measure_cost(runtime.indices, batch, times=5) for runtime in (compiled, native))
    if theirs.per_row >= ours.per_row:
        return 1 if theirs.fixed < ours.fixed else None
    crossing = (theirs.fixed - ours.fixed) / (ours.per_row - theirs.per_row)
    return max(1, math.ceil(crossing))
