"""Which runtime answers each row of a loaded model, and why (shown by GET /models/{name}),
and the check that decides it (`checked`).

A compiled model serves only where it answers as the estimator does, which the check
tests (`comparison.verify`) on training rows, rows with missing values and rows at the model's own
split values: at the end of the fit, and again at load unless the fit's check was made on
the same platform (`record`). Even then the estimator answers, by construction (read from
its file when a batch first needs it, with ESTIMATOR_LOADING=lazy), row by row, so that a
row's answer never depends on the other rows of its request:
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
A batch is never sent to one runtime or the other by its size: the two differ in the last
digits of a probability, so a row would answer differently alone and among many. Where the
estimator is faster even for one row, it serves everything.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from server.inference.compiled.comparison import tolerance, verify
from server.inference.compiled.probes import graph_trees, probe_rows
from server.inference.compiled.runtimes import NativeRuntime, OnnxRuntime, platform_id
from server.inference.timing import fastest, measure_cost

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

    @property
    def name(self) -> str:
        return "native" if self.compiled is None else "onnx"

    def describe(self) -> dict[str, Any]:
        estimator = "read" if self.native.loaded else "not read yet (read when a batch needs it)"
        return {"runtime": self.name, "runtime_detail": self.detail, "estimator": estimator}

    def _compiled_rows(self, X: np.ndarray) -> np.ndarray:
        """The rows the compiled copy answers: all but those with a value beyond float32's
        range, and those with a missing value where the check found it wrong on them."""
        if self.compiled is None:
            return np.zeros(len(X), dtype=bool)
        magnitude = np.abs(X)
        if (magnitude < FLOAT32_MAX).all():  # the common case: one pass, no NaN, no giant
            return np.ones(len(X), dtype=bool)
        refused = (magnitude >= FLOAT32_MAX).any(axis=1)
        if not self.missing_rows:
            refused |= np.isnan(X).any(axis=1)
        return np.asarray(~refused)

    def _split(self, X: np.ndarray, compiled_rows: np.ndarray, answer: str) -> np.ndarray:
        """`answer` ("raw" or "probabilities") of each row from the runtime that answers it."""
        if not compiled_rows.any():
            return np.asarray(self.native.probabilities(X))
        assert self.compiled is not None
        compute = getattr(self.compiled, answer)
        if compiled_rows.all():
            return np.asarray(compute(X))
        ours = compute(X[compiled_rows])
        found = np.empty((len(X), ours.shape[1]), dtype=np.float64)
        found[compiled_rows] = ours
        found[~compiled_rows] = self.native.probabilities(X[~compiled_rows])
        return found

    def _near_ties(self, probabilities: np.ndarray) -> np.ndarray:
        top_two = np.partition(probabilities, -2, axis=1)[:, -2:]
        return np.asarray(top_two[:, 1] - top_two[:, 0] <= 2 * self.tolerance)

    def probabilities_and_indices(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both, from one prediction: labels as the library's `predict` gives them."""
        compiled_rows = self._compiled_rows(X)
        probabilities = self._split(X, compiled_rows, "probabilities")
        indices = probabilities.argmax(axis=1)
        close = self._near_ties(probabilities)  # with no compiled model: exact ties
        if close.any():
            again = close & compiled_rows
            if again.any():
                probabilities[again] = self.native.probabilities(X[again])
            indices[close] = self.native.indices(X[close])
        return probabilities, indices

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return self.probabilities_and_indices(X)[0]

    def indices(self, X: np.ndarray) -> np.ndarray:
        compiled_rows = self._compiled_rows(X)
        if not compiled_rows.any():
            return self.native.indices(X)
        # labels need no clipping: near ties are guarded
        probabilities = self._split(X, compiled_rows, "raw")
        indices = probabilities.argmax(axis=1)
        close = self._near_ties(probabilities) | ~compiled_rows
        if close.any():
            indices[close] = self.native.indices(X[close])
        return indices


def choose_runtime(
    native: NativeRuntime,
    bundle: dict[str, Any],
    setting: RuntimeSetting,
    algorithm: Algorithm,
    domains: dict[int, np.ndarray] | None = None,
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
    return with_routing(checked(native, bundle["onnx"], rows, algorithm, domains), rows)


def with_routing(choice: RuntimeChoice, rows: np.ndarray) -> RuntimeChoice:
    """A checked choice; the estimator's alone where it is faster at every size (timed)."""
    if choice.compiled is None or not estimator_always_faster(choice, rows):
        return choice
    return RuntimeChoice(
        choice.native, None, f"{choice.detail}; but the estimator is faster at every size"
    )


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
    )


def checked(
    native: NativeRuntime,
    onnx: bytes,
    rows: np.ndarray,
    algorithm: Algorithm,
    domains: dict[int, np.ndarray] | None = None,
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
        probes = probe_rows(rows, thresholds, _probe_budget(native, rows), domains=domains)
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


def estimator_always_faster(choice: RuntimeChoice, rows: np.ndarray) -> bool:
    """Whether the estimator predicts faster than the compiled model at one row and per row
    (each timed at 1 and TIMING_ROWS rows, a cost fixed per call plus one per row)."""
    assert choice.compiled is not None
    complete = rows[~np.isnan(rows).any(axis=1)]
    if not len(complete):
        complete = np.zeros((1, rows.shape[1]))
    batch = np.resize(complete, (TIMING_ROWS, rows.shape[1]))
    ours = measure_cost(choice.compiled.indices, batch, times=5)
    # An estimator no faster on one row has the larger fixed cost unless its cost per row
    # is the larger one: either way not faster at every size, with no need to time it on
    # the batch (a forest's batch calls were most of the check's time).
    if fastest(choice.native.indices, batch[:1], times=5) >= ours.seconds(1):
        return False
    theirs = measure_cost(choice.native.indices, batch, times=5)
    return bool(theirs.per_row < ours.per_row and theirs.fixed < ours.fixed)
