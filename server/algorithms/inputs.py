"""Rows a type can't take, refused before any runtime sees them, naming the columns."""

from __future__ import annotations

import numpy as np

from server.algorithms import ALGORITHMS, Algorithm
from server.errors import InvalidInput


def refuse_missing(
    algorithm: Algorithm, X: np.ndarray, feature_names: list[str] | None, field: str = "X"
) -> None:
    """InvalidInput naming the columns with missing values, for a model that can't take
    them (the caller knows: a LogisticRegression saved before v5 can't)."""
    missing = np.isnan(X).any(axis=0)
    if not missing.any():
        return
    raise InvalidInput(
        f"{algorithm.name} can't take missing values, and {field} has some in column(s) "
        f"{flagged(missing, feature_names)}. Fill them in "
        "(impute) first, or train a new version of the model: from v5 every type takes them: "
        f"{', '.join(a.name for a in ALGORITHMS.values() if a.handles_missing or a.imputes)}"
    )


def refuse_beyond_float32(
    algorithm: Algorithm, X: np.ndarray, feature_names: list[str] | None
) -> None:
    """InvalidInput naming the columns whose values overflow float32, for a type that reads
    X as float32 (they would become infinities)."""
    if not algorithm.float32_inputs:
        return
    with np.errstate(over="ignore"):
        overflowing = np.asarray(np.isinf(X.astype(np.float32)).any(axis=0))
    if not overflowing.any():
        return
    raise InvalidInput(
        f"{algorithm.name} reads values as float32, whose range ends at "
        f"{float(np.finfo(np.float32).max):.8g} either way, and X has larger ones in column(s) "
        f"{flagged(overflowing, feature_names)}"
    )


def flagged(flagged: np.ndarray, feature_names: list[str] | None) -> str:
    """The flagged columns (or rows), by name where there are names, else by index; 20 at
    most."""
    columns = np.flatnonzero(flagged).tolist()
    named = [repr(feature_names[i]) for i in columns] if feature_names else columns
    return f"{', '.join(map(str, named[:20]))}{' ...' if len(named) > 20 else ''}"
