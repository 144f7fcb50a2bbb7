"""CSV and Parquet files, read by pyarrow, turned into feature matrices and labels.

Blocking (call it in a thread). The format is told by the content, not the file name: a
Parquet file starts with the magic bytes `PAR1`; anything else is read as CSV (UTF-8, a
header line, comma-separated). In CSV an empty cell, `NA`, `NaN` or `null` is a missing value,
as pyarrow reads them; in Parquet a null is. pyarrow reads CSV on one thread here: the server
keeps one core, and training processes have the others.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from server.errors import InvalidInput

PARQUET_MAGIC = b"PAR1"
# CSV line of a table's first row: line 1 is the header.
FIRST_ROW_LINE = 2
CSV_READ = pa_csv.ReadOptions(use_threads=False)


def read_table(file: IO[bytes]) -> pa.Table:
    """The file's table, or InvalidInput with pyarrow's reason (which names the CSV line)."""
    start = file.read(len(PARQUET_MAGIC))
    file.seek(0)
    try:
        if start == PARQUET_MAGIC:
            table = pq.read_table(file, use_threads=False)
        else:
            table = pa_csv.read_csv(file, read_options=CSV_READ)
        names = table.column_names  # decoded here: a header that is not UTF-8 fails
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as error:
        kind = "Parquet" if start == PARQUET_MAGIC else "CSV"
        raise InvalidInput(
            f"the file is not a readable {kind} table: {_line_wording(error)}"
        ) from None
    if table.num_rows == 0:
        raise InvalidInput("the file has a header but no rows")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidInput(f"the file has duplicate column name(s): {', '.join(duplicates)}")
    return table


def _line_wording(error: Exception) -> str:
    # pyarrow numbers CSV rows from the header ("Row #3" is the file's third line).
    return str(error).replace("CSV parse error: Row #", "line ")


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)  # every value missing
    )


def _first_non_number(column: pa.ChunkedArray) -> str:
    """Where a column stops being numeric: 'line N: value' (CSV lines; row N for Parquet)."""
    for index, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return f"line {index + FIRST_ROW_LINE}: {str(value)[:40]!r}"
    return str(column.type)


def numeric_matrix(table: pa.Table) -> np.ndarray:
    """Every column of `table` as a float64 matrix, null -> NaN; non-numeric columns and
    infinities are InvalidInput naming the column (and the line, where one is at fault)."""
    bad = [
        f"{name!r} ({_first_non_number(column)})"
        for name, column in zip(table.column_names, table.columns, strict=True)
        if not _is_numeric(column.type)
    ]
    if bad:
        raise InvalidInput(
            f"non-numeric feature column(s): {'; '.join(bad)}. Categorical features are not "
            "supported yet: encode them as numbers, or drop the column"
        )
    matrix = np.empty((table.num_rows, table.num_columns), dtype=np.float64)
    for index, column in enumerate(table.columns):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        matrix[:, index] = values  # nulls arrive as NaN
    infinite = np.isinf(matrix).any(axis=0)
    if infinite.any():
        names = [table.column_names[i] for i in np.flatnonzero(infinite)]
        raise InvalidInput(f"column(s) {', '.join(map(repr, names))} hold infinity")
    return matrix


def split_target(table: pa.Table, target: str) -> tuple[pa.Table, list[Any]]:
    """The feature columns and the labels of `target` (integers or strings, none missing)."""
    if target not in table.column_names:
        raise InvalidInput(
            f"the file has no target column {target!r}; its columns are "
            f"{', '.join(map(repr, table.column_names))}"
        )
    labels = table.column(target)
    if labels.null_count:
        first = labels.to_pylist().index(None)
        raise InvalidInput(
            f"the target column {target!r} has {labels.null_count} missing label(s), the first "
            f"on line {first + FIRST_ROW_LINE}"
        )
    if not (
        pa.types.is_integer(labels.type)
        or pa.types.is_string(labels.type)
        or pa.types.is_large_string(labels.type)
    ):
        raise InvalidInput(
            f"the target column {target!r} must hold integers or strings, not {labels.type}"
        )
    features = table.drop_columns([target])
    if features.num_columns == 0:
        raise InvalidInput(f"the file has no feature column besides {target!r}")
    return features, labels.to_pylist()
