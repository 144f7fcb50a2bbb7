"""Drift of one window's rows against a version's reference profile (server.monitoring.
profile), per feature, on the profile's own bins:

- numeric: the 10 quantile bins of the training rows, plus a bin for missing;
- categorical: each training level, plus unseen and missing.

The population stability index, sum((a - e) * ln(a / e)) over the bins, with each share
smoothed (`SMOOTHING` added to every bin, then renormalised) so that a bin empty on one side
(an unseen level, a training share of 0) stays finite; and Pearson's chi-squared test of the
window's counts against the training shares (scipy), whose p-values are adjusted for the
number of features with the Benjamini-Hochberg procedure. The profile keeps no raw values,
so no test that needs them (Kolmogorov-Smirnov).

A feature is `drifted` at PSI >= DRIFT_PSI (the usual rule of thumb), unless the window holds
fewer than MIN_ROWS rows: then `drifted` is null, with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import chisquare, false_discovery_control

DRIFT_PSI = 0.2
MIN_ROWS = 100
SMOOTHING = 1e-4


def _smoothed(shares: np.ndarray) -> np.ndarray:
    shares = shares + SMOOTHING
    return shares / shares.sum()


def psi(observed: np.ndarray, expected: np.ndarray) -> float:
    """Of counts `observed` against shares `expected`, both over the same bins."""
    actual = _smoothed(observed / max(observed.sum(), 1))
    reference = _smoothed(expected)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


def p_value(observed: np.ndarray, expected: np.ndarray) -> float:
    reference = _smoothed(expected)
    result = chisquare(observed, reference * observed.sum())
    return float(result.pvalue)


def numeric_counts(values: pa.ChunkedArray, profile: dict[str, Any]) -> np.ndarray:
    """Rows per profile bin, then missing."""
    numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    missing = np.isnan(numbers)
    edges = np.asarray(profile["edges"], dtype=np.float64)
    bins = np.searchsorted(edges, numbers[~missing], side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return np.append(counts, missing.sum())


def categorical_counts(values: pa.ChunkedArray, levels: list[str]) -> np.ndarray:
    """Rows per training level, then unseen, then missing."""
    text = pc.cast(values, pa.string())
    missing = int(text.null_count)
    codes = pc.index_in(text, value_set=pa.array(levels, pa.string())).to_numpy(
        zero_copy_only=False
    )
    known = codes[~np.isnan(codes.astype(np.float64))].astype(np.int64)
    counts = np.bincount(known, minlength=len(levels))
    unseen = len(text) - missing - len(known)
    return np.append(counts, [unseen, missing])


def expected_shares(profile: dict[str, Any]) -> np.ndarray:
    """The profile's shares over the same bins as the counts (unseen: 0 in training)."""
    shares = list(profile["shares"])
    if profile["kind"] == "categorical":
        shares.append(0.0)
    return np.asarray([*shares, profile["missing"]], dtype=np.float64)


def feature_counts(
    table: pa.Table, profile: dict[str, Any], levels: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    """Rows per profile bin of each feature of the profile that the rows hold (an excluded
    column is not captured): counts of several tables add up to those of their rows."""
    counts = {}
    for feature in profile["features"]:
        name = feature["name"]
        if name not in table.column_names:
            continue
        column = table.column(name)
        if feature["kind"] == "categorical":
            counts[name] = categorical_counts(column, levels[name])
        else:
            counts[name] = numeric_counts(column, feature)
    return counts


def features_drift(
    counted: dict[str, np.ndarray], rows: int, profile: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per feature counted (`feature_counts` of `rows` rows): PSI, adjusted p-value,
    drifted; ranked, most drifted first."""
    found = []
    for feature in profile["features"]:
        name = feature["name"]
        if name not in counted:
            continue
        counts, expected = counted[name], expected_shares(feature)
        found.append((name, feature["kind"], psi(counts, expected), p_value(counts, expected)))
    adjusted = false_discovery_control([p for *_, p in found]) if found else []
    described = []
    for (name, kind, index, _), p in zip(found, adjusted, strict=True):
        item: dict[str, Any] = {"name": name, "kind": kind, "psi": round(index, 6)}
        item["p_value"] = float(p)
        if rows < MIN_ROWS:
            item["drifted"] = None
            item["reason"] = f"{rows} rows in the window; drift is judged from {MIN_ROWS}"
        else:
            item["drifted"] = index >= DRIFT_PSI
        described.append(item)
    return sorted(described, key=lambda item: -item["psi"])
