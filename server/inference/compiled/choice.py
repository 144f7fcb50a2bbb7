"""Which runtime answers each batch of a loaded model, and why (shown by GET /models/{name}),
and the check that decides it (`checked`).

A compiled model serves only where it answers as the estimator does, which the check
tests (`comparison.verify`) on training rows, rows with missing values and rows at the model's own
split values: at the end of the fit, and again at load unless the fit's check was made on
the same platform (`record`). Even then the estimator answers, by construction (read from
its file when a batch first needs it, with ESTIMATOR_LOADING=lazy):
- rows with a value beyond float32's range: the libraries disagree on them (scikit-learn's
  forest refuses them, the others answer), and the estimator's answer, or its refusal, is
  the one to give;
- rows with missing values, when the check found the compiled model wrong on them;
- near ties: a row whose two most probable classes are within twice the tolerance of each
  other. The compiled probabilities are within the tolerance of the estimator's, so on every
  other row the most probable class is the same; on these the estimator decides. A label is
  always the library's own `predict`, which at an exact tie need not be the first of the
  tied classes (CatBoost's is not): so even with no compiled model, tied rows take their
  label from `predict`, whether or not the request asked for probabilities.
- large batches, when the estimator is faster there: ONNX Runtime's tree ensemble is 60x
  faster than XGBoost's own predict for one row, but 15% slower for 100 (measured). Both are
  timed at 1 and `TIMING_ROWS` rows; batches from the crossing point on go to the estimator.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from server.inference.compiled.comparison import tolerance, verify
from server.inference.compiled.probes import graph_trees, probe_rows
from server.inference.compiled.runtimes import NativeRuntime, OnnxRuntime, platform_id
from server.inference.timing import measure_cost

if TYPE_CHECKING:
    from server.algorithms.base import Algorithm

RuntimeSetting = Literal["auto", "native"]

TIMING_ROWS = 256
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The check's rows at split values: as many as the estimator predicts in about this long
# (timed on the kept rows first), within these bounds. The check predicts them twice on each
# runtime (probabilities, and labels as the library's own predict gives them).
PROBE_SECONDS = 0.1
PROBE_ROWS = (1000, 6000)


@dataclass(frozen=True)
class RuntimeChoice:
    native: NativeRuntime
    compiled: OnnxRuntime | None  # None: the estimator answers everything
    detail: str
    tolerance: float = 0.0  # compiled probabilities are within this of the estimator's
    missing_rows: bool = False  # whether the compiled model answers rows with missing values
    large_from: int | None = None  # batches of this many rows or more go to the estimator

    @property
    def name(self) -> str:
        return "native" if self.compiled is None else "onnx"

    def describe(self) -> dict[str, Any]:
        estimator = "read" if self.native.loaded else "not read yet (read when a batch needs it)"
        return {"runtime": self.name, "runtime_detail": self.detail, "estimator": estimator}

    def _compiled_for(self, X: np.ndarray) -> OnnxRuntime | None:
        if self.compiled is None or (self.large_from is not None and len(X) >= self.large_from):
            return None
        magnitude = np.abs(X)
        if (magnitude < FLOAT32_MAX).all():  # the common case: one pass, no NaN, no giant
            return self.compiled
        if self.missing_rows and not (magnitude >= FLOAT32_MAX).any():
            return self.compiled
        return None

    def _near_ties(self, probabilities: np.ndarray) -> np.ndarray:
        top_two = np.partition(probabilities, -2, axis=1)[:, -2:]
        return np.asarray(top_two[:, 1] - top_two[:, 0] <= 2 * self.tolerance)

    def probabilities_and_indices(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both, from one prediction: labels as the library's `predict` gives them."""
        compiled = self._compiled_for(X)
        probabilities = (compiled or self.native).probabilities(X)
        indices = probabilities.argmax(axis=1)
        close = self._near_ties(probabilities)  # with no compiled model: exact ties
        if close.any():
            if compiled is not None:
                probabilities[close] = self.native.probabilities(X[close])
            indices[close] = self.native.indices(X[close])
        return probabilities, indices

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return self.probabilities_and_indices(X)[0]

    def indices(self, X: np.ndarray) -> np.ndarray:
        compiled = self._compiled_for(X)
        if compiled is None:
            return self.native.indices(X)
        probabilities = compiled.raw(X)  # labels need no clipping: near ties are guarded
        indices = probabilities.argmax(axis=1)
        close = self._near_ties(probabilities)
        if close.any():
            indices[close] = self.native.indices(X[close])
        return indices


def choose_runtime(
    native: NativeRuntime, bundle: dict[str, Any], setting: RuntimeSetting, algorithm: Algorithm
) -> RuntimeChoice:
    """The compiled model if it passes the check; else the estimator, with the reason.
    Blocking (a session start, the probes and a few predictions)."""
    if setting == "native":
        return RuntimeChoice(native, None, "INFERENCE_RUNTIME=native")
    if "onnx" not in bundle:
        return RuntimeChoice(native, None, "saved without a compiled model (before v2.1)")
    if bundle["onnx"] is None:
        return RuntimeChoice(native, None, str(bundle.get("onnx_error")))
    rows = np.asarray(bundle["check_rows"], dtype=np.float64)
    return with_routing(checked(native, bundle["onnx"], rows, algorithm), rows)


def with_routing(choice: RuntimeChoice, rows: np.ndarray) -> RuntimeChoice:
    """A checked choice, with the batch size from which the estimator serves (timed)."""
    native = choice.native
    if choice.compiled is None:
        return choice
    large_from = _estimator_faster_from(native, choice.compiled, rows)
    if large_from == 1:
        return RuntimeChoice(
            native, None, f"{choice.detail}; but the estimator is faster at every size"
        )
    if large_from is None:
        return choice
    detail = (
        f"{choice.detail}; batches of {large_from} rows or more go to the estimator (faster there)"
    )
    return dataclasses.replace(choice, detail=detail, large_from=large_from)


def record(choice: RuntimeChoice) -> dict[str, Any] | None:
    """What serving needs of a passed check, kept in the metadata: a server on the same
    platform (`platform_id`) can then serve the compiled copy without reading the estimator
    to check it again. None if the compiled copy does not serve."""
    if choice.compiled is None:
        return None
    return {
        "platform": platform_id(),
        "detail": choice.detail,
        "tolerance": choice.tolerance,
        "missing_rows": choice.missing_rows,
        "large_from": choice.large_from,
    }


def from_record(native: NativeRuntime, onnx: bytes, kept: dict[str, Any]) -> RuntimeChoice | None:
    """The choice a check recorded (`record`), if it was made on this platform; else None
    (check again)."""
    if kept.get("platform") != platform_id():
        return None
    return RuntimeChoice(
        native,
        OnnxRuntime(onnx),
        str(kept["detail"]),
        tolerance=float(kept["tolerance"]),
        missing_rows=bool(kept["missing_rows"]),
        large_from=kept["large_from"],
    )


def checked(
    native: NativeRuntime, onnx: bytes, rows: np.ndarray, algorithm: Algorithm
) -> RuntimeChoice:
    """The compiled model behind its routing and guard if it passes the check (on `rows`,
    the training rows kept with it, and the probes); else the estimator, with the reason.
    Run at the end of a fit and again at load (where the server's ONNX Runtime serves)."""
    handles_missing = algorithm.handles_missing
    try:
        compiled = OnnxRuntime(onnx)
        thresholds, n_trees = graph_trees(onnx, rows.shape[1])
        for feature, values in algorithm.thresholds(native.estimator, rows.shape[1]).items():
            thresholds[feature] = np.concatenate([thresholds.get(feature, []), values])
        candidate = RuntimeChoice(
            native, compiled, "", tolerance(compiled, n_trees), missing_rows=handles_missing
        )
        probes = probe_rows(rows, thresholds, _probe_budget(native, rows))
        verdict = verify(native, candidate, rows, probes, handles_missing, candidate.tolerance)
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
    if verdict.missing_rows is not None:
        return dataclasses.replace(
            candidate,
            missing_rows=False,
            detail=f"{verdict.detail}; batches with missing values go to the estimator, on "
            f"which the compiled model disagreed: {verdict.missing_rows}",
        )
    return dataclasses.replace(candidate, detail=verdict.detail)


def _probe_budget(native: NativeRuntime, rows: np.ndarray) -> int:
    started = time.perf_counter()
    native.probabilities(rows)
    per_row = (time.perf_counter() - started) / len(rows)
    low, high = PROBE_ROWS
    return int(min(high, max(low, PROBE_SECONDS / max(per_row, 1e-9))))


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
