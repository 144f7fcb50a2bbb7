"""A request's columns as they came, before they meet a model's: numbers already parsed,
JSON values, or a file's arrays. `column_values` reads one column in any of these forms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

# One column: a float64 array (NaN where missing), a list of JSON values, or a file's array.
RawColumn: TypeAlias = np.ndarray | list[Any] | pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class RawTable:
    columns: list[RawColumn]
    rows: int
    matrix: np.ndarray | None = None  # the whole table, when it is numbers only
    where: Callable[[int], str] | None = None  # a file's row -> "line 7", for messages


def from_rows(rows: list[list[Any]]) -> RawTable:
    """JSON rows (checked to be lists of one width) as columns of JSON values."""
    return RawTable([list(column) for column in zip(*rows, strict=True)], len(rows))


def from_records(records: list[dict[str, Any]], names: list[str]) -> RawTable:
    """JSON records' values of `names` (each record checked to hold them)."""
    return RawTable([[record[name] for record in records] for name in names], len(records))


def from_matrix(X: np.ndarray) -> RawTable:
    return RawTable(list(X.T), len(X), X)


def json_kinds(values: list[Any]) -> tuple[bool, bool]:
    """Whether a column of JSON values holds text, and numbers."""
    kinds = set(map(type, values))
    return str in kinds, bool(kinds & {int, float, bool})
