"""A model's columns: each feature's name and kind, and for a categorical one its levels.

The levels are the model's, kept in its signed metadata in one stable order (sorted, from
the training rows only), with their training counts: a request's text is mapped to what the
model learned through these lists, never through what happens to be in the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "numeric"
    levels: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()  # training rows per level
    # level -> code (its index in `levels`), for mapping a few JSON values without pyarrow
    codes: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.codes.update((level, code) for code, level in enumerate(self.levels))

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.categorical:
            described["levels"] = list(self.levels)
            described["counts"] = list(self.counts)
        return described


@dataclass(frozen=True)
class Columns:
    columns: tuple[Column, ...]
    named: bool  # the names came with the rows (a file, records), not x0, x1, ... of a JSON X
    # Derived once: every request asks for them (the hot path asks `all_numeric`).
    names: list[str] = field(init=False, compare=False, repr=False)
    categorical: list[int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", [column.name for column in self.columns])
        categorical = [i for i, column in enumerate(self.columns) if column.categorical]
        object.__setattr__(self, "categorical", categorical)

    @property
    def feature_names(self) -> list[str] | None:
        """The names a request's columns are matched to, if any."""
        return self.names if self.named else None

    @property
    def level_counts(self) -> tuple[int | None, ...]:
        """Each column's number of levels; None for a numeric one."""
        return tuple(len(c.levels) if c.categorical else None for c in self.columns)

    @property
    def all_numeric(self) -> bool:
        return not self.categorical

    def __len__(self) -> int:
        return len(self.columns)

    def describe(self) -> list[dict[str, Any]]:
        """The metadata's `features`."""
        return [column.describe() for column in self.columns]

    def unseen_by_column(self, unseen: np.ndarray) -> dict[str, int]:
        return {
            self.columns[i].name: int(count) for i, count in enumerate(unseen.tolist()) if count
        }


def numeric_columns(n_features: int, feature_names: list[str] | None) -> Columns:
    """The columns of a model trained before v5: every feature numeric."""
    names = feature_names or [f"x{i}" for i in range(n_features)]
    return Columns(tuple(Column(name) for name in names), named=feature_names is not None)


def columns_from_metadata(metadata: dict[str, Any]) -> Columns:
    """A version's columns as its metadata keeps them (v5), or all numeric (before)."""
    features = metadata.get("features")
    if not features:
        return numeric_columns(int(metadata["n_features"]), metadata.get("feature_names"))
    return Columns(
        tuple(
            Column(
                feature["name"],
                feature["kind"],
                tuple(feature.get("levels", ())),
                tuple(feature.get("counts", ())),
            )
            for feature in features
        ),
        named=metadata.get("feature_names") is not None,
    )
