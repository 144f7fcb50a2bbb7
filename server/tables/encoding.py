"""The one mapping of a request's values to what a model computes on: numbers as float64,
and each categorical cell as its level's code in the model's own list (`Columns`), NaN where
the cell is missing or its level was never seen in training (H2O's rule: an unseen level is
answered as a missing one). Every path goes through here (JSON `X`, records, CSV, Parquet in
any dictionary order, one row or a million), so a row's answer can't depend on the request's
other rows, its column order or its format.

A few JSON values are looked up in a dict; more, and files, go through pyarrow's `index_in`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import InvalidInput
from server.tables.columns import Column, Columns
from server.tables.levels import (
    is_number_type,
    is_text_type,
    level_of,
    levels_of_numbers,
    not_a_feature,
    text_array,
)
from server.tables.raw import RawColumn, RawTable

# Up to this many JSON values, a column is mapped in plain Python (a 1-row predict).
SMALL_COLUMN = 64
NUMBERS = frozenset({int, float, bool, type(None)})


@dataclass(frozen=True)
class Encoded:
    X: np.ndarray  # float64: numbers, and codes of categorical columns (NaN: missing)
    unseen: np.ndarray | None  # per column, cells whose level the model never saw


def encode(columns: Columns, raw: RawTable) -> Encoded:
    """The rows in the model's column order (raw's columns are in that order already)."""
    if raw.matrix is not None and columns.all_numeric:
        return Encoded(raw.matrix, None)
    X = np.empty((raw.rows, len(columns)), dtype=np.float64)
    unseen = np.zeros(len(columns), dtype=np.int64)
    refused = []
    for index, (column, values) in enumerate(zip(columns.columns, raw.columns, strict=True)):
        try:
            if column.categorical:
                X[:, index], unseen[index] = codes(column, values)
            else:
                X[:, index] = numbers(column.name, values)
        except InvalidInput as error:  # every column's refusal in one answer
            refused.append(error.detail)
    if refused:
        raise every_refusal(refused)
    return Encoded(X, unseen if unseen.any() else None)


def every_refusal(details: list[str]) -> InvalidInput:
    """One answer for the refusals of several columns: each says what to do."""
    if len(details) == 1:
        return InvalidInput(details[0])
    listed = " ".join(f"({i}) {detail}" for i, detail in enumerate(details, 1))
    return InvalidInput(f"{len(details)} columns are refused: {listed}")


def encode_numbers(columns: Columns, X: np.ndarray) -> Encoded:
    """A JSON `X` of numbers only: as it is for a model of numeric columns (the hot path),
    its categorical columns mapped as whole numbers otherwise."""
    if columns.all_numeric or X.shape[1] != len(columns):
        return Encoded(X, None)  # the width is the model's to refuse
    X = X.copy()
    unseen = np.zeros(len(columns), dtype=np.int64)
    for index in columns.categorical:
        X[:, index], unseen[index] = codes(columns.columns[index], X[:, index])
    return Encoded(X, unseen if unseen.any() else None)


def codes(column: Column, values: RawColumn) -> tuple[np.ndarray, int]:
    """The codes of one categorical column, and how many of its levels are unseen."""
    if isinstance(values, list) and len(values) <= SMALL_COLUMN:
        levels = [level_of(value, column.name) for value in values]
        found = [column.codes.get(level) if level is not None else None for level in levels]
        unseen = sum(
            level is not None and code is None for level, code in zip(levels, found, strict=True)
        )
        return np.array([np.nan if code is None else code for code in found], np.float64), unseen
    text = levels_array(column.name, values)
    coded = pc.index_in(text, value_set=pa.array(column.levels, pa.string()))
    unseen = int(pc.sum(pc.and_(pc.is_valid(text), pc.is_null(coded))).as_py() or 0)
    return pc.cast(coded, pa.float64()).to_numpy(zero_copy_only=False), unseen


def levels_array(name: str, values: RawColumn) -> pa.Array:
    """Any form of a column as a pyarrow array of levels (nulls where missing)."""
    if isinstance(values, np.ndarray):
        return pa.array(levels_of_numbers(values, name), pa.string())
    if isinstance(values, list):
        return pa.array([level_of(value, name) for value in values], pa.string())
    return text_array(values, name)


def numbers(name: str, values: RawColumn) -> np.ndarray:
    """A numeric column as float64 (NaN where missing); text in it is refused."""
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, list):
        kinds = set(map(type, values))
        if str in kinds:
            raise not_numeric(name, values)
        if not kinds <= NUMBERS:
            found = ", ".join(sorted(kind.__name__ for kind in kinds - NUMBERS))
            raise InvalidInput(f"column {name!r} must hold numbers or null, found {found}")
        if bool in kinds:
            values = [float(value) if type(value) is bool else value for value in values]
        try:
            matrix = np.array(values, dtype=np.float64)  # None becomes NaN
        except OverflowError:  # an integer beyond double range
            raise InvalidInput(f"column {name!r} must hold only finite numbers") from None
        if np.isinf(matrix).any():
            raise InvalidInput(f"column {name!r} must hold only finite numbers")
        return matrix
    kind = values.type
    if is_text_type(kind):
        raise not_numeric(name, values.to_pylist())
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if not is_number_type(kind):
        raise not_a_feature(name, kind)
    if pa.types.is_boolean(kind):
        values = pc.cast(values, pa.int8())
    # Integers beyond 2**53 round to the nearest double, as a JSON number does.
    matrix = pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    if np.isinf(matrix).any():
        raise InvalidInput(f"column(s) {name!r} hold infinity")
    return np.asarray(matrix, dtype=np.float64)


def not_numeric(name: str, values: list[Any]) -> InvalidInput:
    sample = next((value for value in values if isinstance(value, str)), None)
    return InvalidInput(
        f"column {name!r} is numeric in the model, and this request has text in it "
        f"({str(sample)[:40]!r})"
    )
