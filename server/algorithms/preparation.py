"""The preprocessing step that RandomForest and LogisticRegression keep with a model: what
they compute on, made from the service's codes (server.tables.encoding).

- a categorical column becomes one 0/1 column per level plus one for missing (an unseen
  level arrives as missing: both are that column's 1);
- for LogisticRegression, a numeric column is standardised with the training rows' mean and
  standard deviation, a missing value filled with the mean (0 once standardised), and a
  column that had missing values in training gets a 0/1 indicator beside it (H2O's GLM
  default); a forest takes numbers and their missing values as they are.

It is plain numpy over fitted numbers kept in the version's signed metadata, applied before
the estimator and before the compiled graph alike, so both see the same input: scikit-learn's
ColumnTransformer gives the same columns, but costs over a millisecond for one row, several
times the whole prediction (docs/tables.md). Each original column's outputs are contiguous,
so an explanation sums them back into one contribution per column (`groups`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Preparation:
    # Per original column: its kind, and for a categorical one its number of levels.
    levels: tuple[int | None, ...]  # None: numeric
    standardise: bool  # LogisticRegression's numeric columns
    mean: tuple[float, ...] = ()  # per original column (numeric ones used)
    scale: tuple[float, ...] = ()
    indicator: tuple[bool, ...] = ()  # a numeric column with missing values in training

    @classmethod
    def fit(cls, X: np.ndarray, levels: tuple[int | None, ...], standardise: bool) -> Preparation:
        """From the training rows' codes, and each column's number of levels (None:
        numeric)."""
        if not standardise:
            return cls(levels, False)
        empty = np.isnan(X).all(axis=0)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column of missing values only
            mean = np.where(empty, 0.0, np.nanmean(X, axis=0))
            scale = np.where(empty, 1.0, np.nanstd(X, axis=0))
        scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
        indicator = tuple(bool(np.isnan(X[:, i]).any()) for i in range(X.shape[1]))
        return cls(levels, True, tuple(mean.tolist()), tuple(scale.tolist()), indicator)

    def widths(self) -> list[int]:
        """How many columns each original column becomes."""
        return [
            (count + 1) if count is not None else 1 + (self.standardise and self.indicator[i])
            for i, count in enumerate(self.levels)
        ]

    def groups(self) -> list[np.ndarray]:
        """The prepared columns of each original column."""
        ends = np.cumsum(self.widths())
        return [np.arange(end - width, end) for end, width in zip(ends, self.widths(), strict=True)]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The rows as the estimator computes on them (row by row: a row's answer never
        depends on the others)."""
        widths = self.widths()
        out = np.zeros((len(X), sum(widths)), dtype=np.float64)
        start = 0
        for i, (count, width) in enumerate(zip(self.levels, widths, strict=True)):
            column = X[:, i]
            if count is not None:
                missing = np.isnan(column)
                codes = np.where(missing, count, np.nan_to_num(column, nan=0.0)).astype(np.int64)
                out[np.arange(len(X)), start + codes] = 1.0
            elif self.standardise:
                missing = np.isnan(column)
                out[:, start] = np.where(missing, 0.0, (column - self.mean[i]) / self.scale[i])
                if width == 2:
                    out[:, start + 1] = missing
            else:
                out[:, start] = column
            start += width
        return out

    def domains(self) -> dict[int, np.ndarray]:
        """The prepared columns that hold only 0 and 1 (one-hot, indicators)."""
        found: dict[int, np.ndarray] = {}
        for group, count in zip(self.groups(), self.levels, strict=True):
            binary = group if count is not None else group[1:]
            found.update((int(column), np.array([0.0, 1.0])) for column in binary)
        return found

    def describe(self) -> dict[str, Any]:
        """As the metadata keeps it."""
        return {
            "levels": list(self.levels),
            "standardise": self.standardise,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "indicator": list(self.indicator),
        }

    @classmethod
    def from_metadata(cls, kept: dict[str, Any] | None) -> Preparation | None:
        if not kept:
            return None
        return cls(
            tuple(kept["levels"]),
            bool(kept["standardise"]),
            tuple(kept["mean"]),
            tuple(kept["scale"]),
            tuple(kept["indicator"]),
        )


def sum_groups(values: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Contributions over prepared columns (last axis) summed into their original columns."""
    return np.stack([values[..., group].sum(axis=-1) for group in groups], axis=-1)


def input_domains(
    levels: tuple[int | None, ...], preparation: Preparation | None
) -> dict[int, np.ndarray]:
    """The values each column of what the estimator computes on can hold, where they are
    few: a categorical column's codes and missing, or a prepared model's 0/1 columns."""
    if preparation is not None:
        return preparation.domains()
    return {
        i: np.append(np.arange(count, dtype=np.float64), np.nan)
        for i, count in enumerate(levels)
        if count is not None
    }
