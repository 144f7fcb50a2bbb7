"""The rows of a /predict or /evaluate request, before they meet a model.

A JSON `X` is already in the model's column order. `records` and files name their columns:
those are matched to the model's `feature_names` (the columns it was trained on) by name, so
their order does not matter and extra columns are ignored; a missing one is a 422 naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from server.errors import InvalidInput
from server.ingest.matrix import as_matrix

if TYPE_CHECKING:
    from server.ingest.tables import FileTable


class Features(Protocol):
    @property
    def rows(self) -> int: ...

    def matrix_for(self, model: str, feature_names: list[str] | None) -> np.ndarray:
        """The rows as a float64 matrix in the column order of `model`."""
        ...


def _missing(columns: list[str], model: str, feature_names: list[str]) -> InvalidInput:
    listed = ", ".join(repr(name) for name in columns)
    return InvalidInput(
        f"missing column(s) {listed}: model '{model}' was trained on "
        f"{', '.join(repr(name) for name in feature_names)}"
    )


@dataclass(frozen=True)
class MatrixFeatures:
    """A JSON `X`: positional columns, checked against the model's width later."""

    X: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.X)

    def matrix_for(self, model: str, feature_names: list[str] | None) -> np.ndarray:
        return self.X


@dataclass(frozen=True)
class RecordFeatures:
    """A JSON `records`: a list of {column: number or null} objects."""

    records: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(self.records)

    def matrix_for(self, model: str, feature_names: list[str] | None) -> np.ndarray:
        if feature_names is None:
            raise InvalidInput(
                f"model '{model}' was trained from a JSON X, without column names: "
                "send X (rows in its column order), not records"
            )
        missing = [name for name in feature_names if name not in self.records[0]]
        if missing:
            raise _missing(missing, model, feature_names)
        pick = itemgetter(*feature_names)
        try:
            if len(feature_names) == 1:
                rows = [[pick(record)] for record in self.records]
            else:
                rows = [list(pick(record)) for record in self.records]
        except KeyError as error:
            index = next(i for i, record in enumerate(self.records) if error.args[0] not in record)
            raise InvalidInput(f"records[{index}] has no {error.args[0]!r}") from None
        return as_matrix(rows, "records")


def records_features(records: Any) -> RecordFeatures:
    if not isinstance(records, list) or not records:
        raise InvalidInput("records must be a non-empty list of {column: value} objects")
    if not all(type(record) is dict for record in records):
        raise InvalidInput("records must be a list of {column: value} objects")
    return RecordFeatures(records)


@dataclass(frozen=True)
class TableFeatures:
    """The columns of a CSV or Parquet file."""

    file_table: FileTable

    @property
    def rows(self) -> int:
        return int(self.file_table.table.num_rows)

    def matrix_for(self, model: str, feature_names: list[str] | None) -> np.ndarray:
        from server.ingest.tables import numeric_matrix

        if feature_names is None:  # trained from a JSON X: the file's columns, in order
            return numeric_matrix(self.file_table)
        present = set(self.file_table.table.column_names)
        missing = [name for name in feature_names if name not in present]
        if missing:
            raise _missing(missing, model, feature_names)
        return numeric_matrix(self.file_table.select(feature_names))
