"""The rows of a /predict or /evaluate request, before they meet a model.

A JSON `X` is already in the model's column order. `records` and files name their columns:
those are matched to the model's `feature_names` (the columns it was trained on) by name, so
their order does not matter and extra columns are ignored; a missing one is a 422 naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from server.errors import InvalidInput
from server.ingest.matrix import as_matrix
from server.ingest.tables import FileTable, numeric_matrix
from server.tables.columns import Columns
from server.tables.encoding import Encoded, encode, encode_numbers
from server.tables.keys import key_of, keys_of_column
from server.tables.raw import RawColumn, RawTable, from_matrix, from_records


class Features(Protocol):
    @property
    def rows(self) -> int: ...

    def encoded_for(self, model: str, columns: Columns) -> Encoded:
        """The rows as a float64 matrix in the column order of `model`, categorical cells
        as the model's codes (server.tables.encoding)."""
        ...

    def raw_column(self, columns: Columns, index: int) -> RawColumn:
        """The model's column `index` as the request sent it (capture keeps its text)."""
        ...

    def key_values(self, key: str) -> list[str | None]:
        """The request's `key` column (config.key) as text: records and files only."""
        ...


def _no_key_column(key: str) -> InvalidInput:
    return InvalidInput(
        f"config.key names a column ({key!r}): send records or a file, whose columns have names"
    )


def _key_missing(key: str) -> InvalidInput:
    return InvalidInput(f"config.key is {key!r}, and the rows have no such column")


def _missing(columns: list[str], model: str, feature_names: list[str]) -> InvalidInput:
    listed = ", ".join(repr(name) for name in columns)
    return InvalidInput(
        f"missing column(s) {listed}: model '{model}' was trained on "
        f"{', '.join(repr(name) for name in feature_names)}"
    )


@dataclass(frozen=True)
class MatrixFeatures:
    """A JSON `X`: positional columns, checked against the model's width later. Numbers
    only (X), or rows holding text (raw), mapped once the model is known."""

    X: np.ndarray | None
    raw: RawTable | None = None

    @property
    def rows(self) -> int:
        return len(self.X) if self.X is not None else self.raw.rows  # type: ignore[union-attr]

    def encoded_for(self, model: str, columns: Columns) -> Encoded:
        if self.X is not None:
            return encode_numbers(columns, self.X)
        assert self.raw is not None
        if len(self.raw.columns) != len(columns):
            raise InvalidInput(
                f"model '{model}' expects {len(columns)} features per row, got "
                f"{len(self.raw.columns)}"
            )
        return encode(columns, self.raw)

    def raw_column(self, columns: Columns, index: int) -> RawColumn:
        return self.X[:, index] if self.X is not None else self.raw.columns[index]  # type: ignore[union-attr]

    def key_values(self, key: str) -> list[str | None]:
        raise _no_key_column(key)


@dataclass(frozen=True)
class RecordFeatures:
    """A JSON `records`: a list of {column: value} objects."""

    records: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(self.records)

    def encoded_for(self, model: str, columns: Columns) -> Encoded:
        feature_names = columns.feature_names
        if feature_names is None:
            raise InvalidInput(
                f"model '{model}' was trained from a JSON X, without column names: "
                "send X (rows in its column order), not records"
            )
        missing = [name for name in feature_names if name not in self.records[0]]
        if missing:
            raise _missing(missing, model, feature_names)
        if not columns.all_numeric:
            self._check_keys(feature_names)
            return encode(columns, from_records(self.records, feature_names))
        return Encoded(self.numbers(feature_names), None)

    def raw_column(self, columns: Columns, index: int) -> RawColumn:
        name = columns.columns[index].name
        return [record.get(name) for record in self.records]

    def key_values(self, key: str) -> list[str | None]:
        if not any(key in record for record in self.records):
            raise _key_missing(key)
        return [key_of(record.get(key), key) for record in self.records]

    def table(self, names: list[str]) -> RawTable:
        """The records' values of `names` (a fit's columns): numbers as one matrix, or, with
        text among them, column by column."""
        try:
            return from_matrix(self.numbers(names))
        except InvalidInput:
            self._check_keys(names)
            return from_records(self.records, names)

    def numbers(self, feature_names: list[str]) -> np.ndarray:
        """The records' values of `feature_names` as a matrix of numbers (a model of numeric
        columns: one pass through numpy)."""
        pick = itemgetter(*feature_names)
        try:
            if len(feature_names) == 1:
                rows = [[pick(record)] for record in self.records]
            else:
                rows = [list(pick(record)) for record in self.records]
        except KeyError:
            self._check_keys(feature_names)
            raise
        return as_matrix(rows, "records")

    def _check_keys(self, feature_names: list[str]) -> None:
        for index, record in enumerate(self.records):
            for name in feature_names:
                if name not in record:
                    raise InvalidInput(f"records[{index}] has no {name!r}")


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

    def encoded_for(self, model: str, columns: Columns) -> Encoded:
        table = self.file_table
        if columns.feature_names is None:  # trained from a JSON X: the file's columns, in order
            if table.table.num_columns != len(columns):
                raise InvalidInput(
                    f"model '{model}' expects {len(columns)} features per row, got "
                    f"{table.table.num_columns}"
                )
        else:
            present = set(table.table.column_names)
            missing = [name for name in columns.feature_names if name not in present]
            if missing:
                raise _missing(missing, model, columns.feature_names)
            table = table.select(columns.feature_names)
        if columns.all_numeric:
            return Encoded(numeric_matrix(table), None)
        categorical = [table.table.column_names[i] for i in columns.categorical]
        table = table.with_text(categorical)  # a CSV's "02139" keeps its zero
        return encode(columns, RawTable(list(table.table.columns), table.table.num_rows))

    def raw_column(self, columns: Columns, index: int) -> RawColumn:
        table = self.file_table
        if columns.feature_names is None:
            return table.table.column(index)
        name = columns.feature_names[index]
        return table.with_text([name]).table.column(name)

    def key_values(self, key: str) -> list[str | None]:
        if key not in self.file_table.table.column_names:
            raise _key_missing(key)
        try:
            column = self.file_table.with_text([key]).table.column(key)
        except pa.ArrowInvalid:  # a CSV's cell that is not UTF-8
            raise InvalidInput(
                f"the key column {key!r} holds bytes that are not UTF-8 text"
            ) from None
        return keys_of_column(column, key)
