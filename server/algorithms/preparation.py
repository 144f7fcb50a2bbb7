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

    def __post_init__(self) -> None:
        """Where each original column goes, computed once: `transform` is a few numpy
        operations whatever the number of columns (a 1-row predict pays for each)."""
        widths = self.widths()
        starts = np.cumsum([0, *widths[:-1]])
        categorical = [i for i, count in enumerate(self.levels) if count is not None]
        numeric = [i for i, count in enumerate(self.levels) if count is None]
        layout = {
            "width": int(sum(widths)),
            "categorical": np.array(categorical, dtype=np.intp),
            "missing_code": np.array([self.levels[i] for i in categorical], dtype=np.float64),
            "starts": starts[categorical].astype(np.intp),
            "numeric": np.array(numeric, dtype=np.intp),
            "numeric_to": starts[numeric].astype(np.intp),
        }
        if self.standardise and numeric:
            layout["mean"] = np.asarray(self.mean, dtype=np.float64)[numeric]
            layout["scale"] = np.asarray(self.scale, dtype=np.float64)[numeric]
            flagged = [i for i in numeric if self.indicator[i]]
            layout["flagged"] = np.array(flagged, dtype=np.intp)
            layout["flagged_to"] = (starts[flagged] + 1).astype(np.intp)
        object.__setattr__(self, "_layout", layout)

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
        layout: dict[str, Any] = self._layout  # type: ignore[attr-defined]
        out = np.zeros((len(X), layout["width"]), dtype=np.float64)
        if len(layout["categorical"]):
            codes = X[:, layout["categorical"]]
            codes = np.where(np.isnan(codes), layout["missing_code"], codes)
            rows = np.arange(len(X))[:, None]
            out[rows, layout["starts"] + codes.astype(np.intp)] = 1.0
        if len(layout["numeric"]):
            values = X[:, layout["numeric"]]
            if self.standardise:
                missing = np.isnan(values)
                values = np.where(missing, 0.0, (values - layout["mean"]) / layout["scale"])
                if len(layout["flagged"]):
                    out[:, layout["flagged_to"]] = np.isnan(X[:, layout["flagged"]])
            out[:, layout["numeric_to"]] = values
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
