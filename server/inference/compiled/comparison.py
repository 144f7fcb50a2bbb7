"""The comparison behind the check (`choice.checked`): does the model as served answer as
its estimator does?

It runs the served path (`RuntimeChoice`: compiled model, routing and near-tie guard) against
the estimator on four sets of rows:
- rows kept from the training data at fit time (`check_rows`);
- the same rows with a third of their values missing (a tree may send a missing value the
  other way), for the types that take missing values;
- rows at the model's own split values and their float32/float64 neighbours, and extreme
  values (`server.inference.compiled.probes`): where flips happen, if they happen.
Labels must be identical on every row. Probabilities may differ by at most the model's
tolerance (`tolerance`), which is also what the near-tie guard relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.inference.compiled.runtimes import NativeRuntime, OnnxRuntime, Runtime

MISSING_SHARE = 1 / 3
# A float32 sum of n trees is off by at most about n half-ulps of its size; each of the two
# runtimes may be (XGBoost and CatBoost sum in float32 themselves), and a probability moves by
# at most a quarter of its margin: 2**-22 per tree bounds it. Seen: 5e-8 for 300 trees.
FLOAT32_PER_TREE = 2.0**-22
FLOAT32_FLOOR = 1e-5
# LogisticRegression runs in double on both sides (seen: 4e-16).
FLOAT64 = 1e-9


def tolerance(compiled: OnnxRuntime, n_trees: int) -> float:
    if compiled.input_dtype is np.float64:
        return FLOAT64
    return max(FLOAT32_FLOOR, n_trees * FLOAT32_PER_TREE)


@dataclass(frozen=True)
class Verdict:
    complete_rows: str | None  # None: they agree; else what differed
    missing_rows: str | None
    detail: str  # what was compared, for GET /models/{name}


def with_missing(rows: np.ndarray, seed: int = 0) -> np.ndarray:
    holes = np.random.default_rng(seed).random(rows.shape) < MISSING_SHARE
    return np.where(holes, np.nan, rows)


def verify(
    native: NativeRuntime,
    served: Runtime,
    rows: np.ndarray,
    probes: np.ndarray,
    handles_missing: bool,
    tolerance: float,
) -> Verdict:
    """`served` answers complete rows (`rows` and `probes` within float32's range; beyond it
    the estimator answers by construction) and, if `handles_missing`, rows with holes."""
    within = ~(np.abs(probes) >= np.finfo(np.float32).max).any(axis=1)
    complete = np.vstack([rows[~np.isnan(rows).any(axis=1)], probes[within]])
    complete_gap = _difference(native, served, complete, tolerance) if len(complete) else None
    checked = f"{len(complete)} complete rows ({int(within.sum())} at split values or extreme)"
    missing_gap = None
    if handles_missing:
        missing_rows = np.vstack([rows[np.isnan(rows).any(axis=1)], with_missing(rows)])
        missing_gap = _difference(native, served, missing_rows, tolerance)
        checked += f" and {len(missing_rows)} rows with missing values"
    detail = f"checked on {checked} (labels identical, probabilities within {tolerance:.2g})"
    return Verdict(complete_gap, missing_gap, detail)


def _difference(
    native: NativeRuntime, served: Runtime, rows: np.ndarray, tolerance: float
) -> str | None:
    """None if the two agree on `rows`, else what differed."""
    expected, got = native.probabilities(rows), served.probabilities(rows)
    if got.shape != expected.shape:
        return f"probabilities of shape {got.shape} instead of {expected.shape}"
    flipped = int((native.indices(rows) != served.indices(rows)).sum())
    if flipped:
        return f"{flipped} of {len(rows)} labels differ"
    gap = float(np.abs(got - expected).max())
    if not gap <= tolerance:  # also catches NaN
        return f"probabilities differ by up to {gap:.3g} (tolerance {tolerance:.2g})"
    return None
