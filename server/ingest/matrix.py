"""A float64 matrix from JSON rows: numbers, with `null` for a missing value (NaN), and
`true`/`false` as 1 and 0.

numpy infers the type of a list of rows in one pass: strings, ragged or nested rows all show
in the result's shape or dtype. A null makes that an object array: only then do the rows
take a second path (a type scan, then numpy's own None -> NaN conversion), so a body without
nulls pays nothing for them (looking for a `null` token in the body first cost more: see
docs/performance-history.md, Figures behind the code). Rows holding text are a table
(`as_rows`): their columns are mapped once the model is known (server.tables).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any, NoReturn

import numpy as np

from server.errors import InvalidInput
from server.tables.raw import RawTable, from_rows

# Matrices up to this many rows are checked value by value in Python (a 1-row predict).
SMALL_ROWS = 8
NUMBERS_OR_NULL = frozenset({float, int, bool, type(None)})
SCALARS = NUMBERS_OR_NULL | {str}


def as_matrix(rows: Any, field: str = "X") -> np.ndarray:
    """A float64 matrix (NaN where the JSON said null), or InvalidInput saying what is wrong."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{field} must be a non-empty list of rows")
    if len(rows) <= SMALL_ROWS:
        return _small_matrix(rows, field)
    try:
        matrix = np.asarray(rows)
    except ValueError:  # ragged, or rows mixed with numbers
        _explain(rows, field)
    if matrix.dtype == object:  # nulls (or other objects: the second path tells)
        return _matrix_with_nulls(rows, field)
    if matrix.ndim != 2 or matrix.dtype.kind not in "biuf":
        _explain(rows, field)
    return _finished(matrix.astype(np.float64, copy=False), field)


def _matrix_with_nulls(rows: list[Any], field: str) -> np.ndarray:
    """One scan of the value types (also refuses booleans), then numpy turns None into NaN."""
    try:
        kinds = set(map(type, chain.from_iterable(rows)))
    except TypeError:  # a row that is not a list
        _explain(rows, field)
    if not kinds <= NUMBERS_OR_NULL:
        _explain(rows, field)
    try:
        matrix = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError):  # ragged, or rows that are not lists
        _explain(rows, field)
    except OverflowError:  # an integer beyond double range
        raise InvalidInput(f"{field} must hold only finite numbers or null") from None
    if matrix.ndim != 2:
        _explain(rows, field)
    return _finished(matrix, field)


def _finished(matrix: np.ndarray, field: str) -> np.ndarray:
    if matrix.shape[1] == 0:
        raise InvalidInput(f"{field} has rows without features")
    # NaN can only come from null (orjson refuses NaN tokens); an integer beyond double
    # range becomes infinity.
    if np.isinf(matrix).any():
        raise InvalidInput(f"{field} must hold only finite numbers or null")
    return matrix


def _small_matrix(rows: list[Any], field: str) -> np.ndarray:
    """The same checks for a few rows, in plain Python: cheaper than four numpy passes."""
    width = len(rows[0]) if type(rows[0]) is list else -1
    for row in rows:
        if type(row) is not list or len(row) != width:
            _explain(rows, field)
        for value in row:
            kind = type(value)
            if kind is float:
                if math.isinf(value):
                    raise InvalidInput(f"{field} must hold only finite numbers or null")
            elif kind is not int and kind is not bool and value is not None:
                _explain(rows, field)
    if width == 0:
        raise InvalidInput(f"{field} has rows without features")
    try:
        return np.array(rows, dtype=np.float64)  # None becomes NaN
    except OverflowError:  # an integer beyond double range
        raise InvalidInput(f"{field} must hold only finite numbers or null") from None


def as_rows(rows: Any, field: str = "X") -> np.ndarray | RawTable:
    """A matrix of numbers, or, for rows of one width holding text, their columns."""
    try:
        return as_matrix(rows, field)
    except InvalidInput:
        if type(rows) is not list or not all(type(row) is list for row in rows):
            raise
        if len(set(map(len, rows))) != 1:
            raise
        kinds = set(map(type, chain.from_iterable(rows)))
        if str not in kinds or not kinds <= SCALARS:
            raise
        return from_rows(rows)


def _explain(rows: list[Any], field: str) -> NoReturn:
    """The precise reason a matrix was refused (slower: only for bad input)."""
    if not all(type(row) is list for row in rows):
        raise InvalidInput(f"{field} must be a list of rows, each a list of numbers")
    widths = set(map(len, rows))
    if len(widths) != 1:
        raise InvalidInput(f"{field} is ragged: its rows have {sorted(widths)} features")
    kinds = set(map(type, chain.from_iterable(rows)))
    if kinds <= NUMBERS_OR_NULL:  # all numbers, but an integer too large for a double
        raise InvalidInput(f"{field} must hold only finite numbers or null")
    names = sorted(kind.__name__ for kind in kinds - NUMBERS_OR_NULL)
    raise InvalidInput(f"{field} must hold only numbers or null, found {', '.join(names)}")
