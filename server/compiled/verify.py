"""The check at load: does the compiled model answer as the estimator does?

It runs on rows kept from the training data at fit time (`check_rows`), and on the same
rows with a third of their values made missing: a compiled tree may send a missing value
the other way. Labels must be identical. Probabilities may differ by at most:
- 1e-6 for models with double-precision inputs (LogisticRegression, RandomForest): the
  comparisons are exact, but skl2onnx stores a forest's leaf values as float32, each off by
  up to 6e-8 relative, so their average is too (seen: 5e-8; LogisticRegression 4e-16);
- 1e-5 for float32 ones (XGBoost, LightGBM, CatBoost): a float32 sum of n trees is off by up
  to ~n x 6e-8 relative in the margin, and a probability moves by at most a quarter of
  that (seen: 1.2e-7 to 2.7e-7 for 100 to 300 rounds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.compiled.runtimes import NativeRuntime, OnnxRuntime

MISSING_SHARE = 1 / 3
TOLERANCE = {"float64": 1e-6, "float32": 1e-5}


@dataclass(frozen=True)
class Verdict:
    complete_rows: str | None  # None: they agree; else what differed
    missing_rows: str | None
    detail: str  # what was compared, for GET /models/{name}


def with_missing(rows: np.ndarray, seed: int = 0) -> np.ndarray:
    holes = np.random.default_rng(seed).random(rows.shape) < MISSING_SHARE
    return np.where(holes, np.nan, rows)


def verify(
    native: NativeRuntime, compiled: OnnxRuntime, rows: np.ndarray, handles_missing: bool
) -> Verdict:
    """`handles_missing`: whether the model type takes missing values at all (the server
    refuses them for the others, so they are not checked)."""
    tolerance = TOLERANCE[np.dtype(compiled.input_dtype).name]
    complete = rows[~np.isnan(rows).any(axis=1)]
    complete_gap = _difference(native, compiled, complete, tolerance) if len(complete) else None
    checked = f"{len(complete)} complete rows"
    missing_gap = None
    if handles_missing:
        missing_rows = np.vstack([rows[np.isnan(rows).any(axis=1)], with_missing(rows)])
        missing_gap = _difference(native, compiled, missing_rows, tolerance)
        checked += f" and {len(missing_rows)} rows with missing values"
    detail = f"checked on {checked} (labels identical, probabilities within {tolerance:g})"
    return Verdict(complete_gap, missing_gap, detail)


def _difference(
    native: NativeRuntime, compiled: OnnxRuntime, rows: np.ndarray, tolerance: float
) -> str | None:
    """None if the two agree on `rows`, else what differed."""
    expected, got = native.probabilities(rows), compiled.probabilities(rows)
    if got.shape != expected.shape:
        return f"probabilities of shape {got.shape} instead of {expected.shape}"
    flipped = int((native.indices(rows) != got.argmax(axis=1)).sum())
    if flipped:
        return f"{flipped} of {len(rows)} labels differ"
    gap = float(np.abs(got - expected).max())
    if not gap <= tolerance:  # also catches NaN
        return f"probabilities differ by up to {gap:.3g} (tolerance {tolerance:g})"
    return None
