"""CSV and Parquet files, read by pyarrow, turned into feature matrices and labels.

Blocking (call it in a thread). The format is told by the content, not the file name: a
Parquet file starts with the magic bytes `PAR1`; anything else is read as CSV (UTF-8, a
header line, comma-separated). In CSV an empty cell, `NA`, `NaN`, `null` and pyarrow's other
spellings (`MISSING`) are a missing value, in every column, the label column included (where
a missing label is refused); in Parquet a null is. pyarrow reads CSV on one thread here: the
server keeps one core, and training processes have the others.

Errors name the file's line, counted as an editor counts them: a quoted field may hold a
newline, so a record can span lines (`FileTable.where`).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from server.errors import InvalidInput
from server.ingest.limits import UNLIMITED, TableLimits

PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 16_384
# Missing values in CSV, in every column: pyarrow's own list, made to apply to text columns too.
MISSING = tuple(pa_csv.ConvertOptions().null_values)
CSV_READ = pa_csv.ReadOptions(use_threads=False)
CSV_CONVERT = pa_csv.ConvertOptions(null_values=MISSING, strings_can_be_null=True)
PYARROW_ROW = re.compile(r"CSV parse error: Row #(\d+)")


@dataclass(frozen=True)
class FileTable:
    """A file's table, and where its rows are in the file (for messages)."""

    table: pa.Table
    where: Callable[[int], str]  # row index (0: the first row after the header) -> "line 7"
    csv: bytes | None = None  # a CSV's text, to read columns again as text

    def select(self, names: list[str]) -> FileTable:
        return FileTable(self.table.select(names), self.where, self.csv)

    def with_text(self, names: list[str]) -> FileTable:
        """The table with these columns as the file wrote them: a CSV's `02139` is text,
        which type inference made the number 2139 (Parquet keeps its own types)."""
        table = self.table
        again = [name for name in names if not pa.types.is_string(table.schema.field(name).type)]
        if self.csv is None or not again:
            return self
        text = _read_csv(self.csv, again, include=again)
        for name in again:
            table = table.set_column(table.schema.get_field_index(name), name, text.column(name))
        return FileTable(table, self.where, self.csv)


def _read_csv(data: bytes, text_columns: list[str], include: list[str] | None = None) -> pa.Table:
    convert = CSV_CONVERT
    if text_columns or include:
        convert = pa_csv.ConvertOptions(
            null_values=MISSING,
            strings_can_be_null=True,
            column_types=dict.fromkeys(text_columns, pa.string()),
            include_columns=include or [],
        )
    return pa_csv.read_csv(pa.BufferReader(data), read_options=CSV_READ, convert_options=convert)


def csv_line(data: bytes, record: int) -> int:
    """The line of `data` on which CSV record `record` starts (record 0: the header).
    Only messages need it, so the file is scanned then, up to that record."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    reader = csv.reader(text)
    line = 1
    for index, _ in enumerate(reader):
        if index == record:
            return line
        line = reader.line_num + 1
    return line


def _read_parquet(data: bytes, limits: TableLimits) -> pa.Table:
    """The table, once its metadata says it is within the limits (nothing decoded before),
    decoded in batches that stop as soon as their size passes the limit: dictionary-encoded
    text can hold far more than the metadata's sizes say."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    metadata = parquet.metadata
    limits.check_columns(metadata.num_columns)
    limits.check_rows(metadata.num_rows)
    groups = range(metadata.num_row_groups)
    limits.check_decoded(sum(metadata.row_group(i).total_byte_size for i in groups))
    batches, decoded = [], 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=False):
        decoded += batch.nbytes
        limits.check_decoded(decoded)
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=parquet.schema_arrow)


def read_table(
    file: IO[bytes], limits: TableLimits = UNLIMITED, text_columns: list[str] | None = None
) -> FileTable:
    """The file's table, or InvalidInput with pyarrow's reason (naming the CSV line), or
    TooLarge past `limits`. A CSV is checked once parsed: its table takes about the memory
    of its text, which the body size limit bounds already. `text_columns` of a CSV are read
    as text (declared categorical: `02139` keeps its zero)."""
    data = file.read()
    parquet = data.startswith(PARQUET_MAGIC)
    try:
        table = _read_parquet(data, limits) if parquet else _read_csv(data, text_columns or [])
        names = table.column_names  # decoded here: a header that is not UTF-8 fails
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as error:
        kind = "Parquet" if parquet else "CSV"
        message = PYARROW_ROW.sub(  # pyarrow counts records from the header, 1-based
            lambda row: f"line {csv_line(data, int(row.group(1)) - 1)}", str(error)
        )
        raise InvalidInput(f"the file is not a readable {kind} table: {message}") from None
    if table.num_rows == 0:
        raise InvalidInput("the file has a header but no rows")
    limits.check_columns(len(names))
    limits.check_rows(table.num_rows)
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise InvalidInput(f"the file has duplicate column name(s): {', '.join(duplicates)}")
    if parquet:
        return FileTable(table, lambda index: f"row {index + 1}")
    return FileTable(table, lambda index: f"line {csv_line(data, index + 1)}", data)


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)  # every value missing
    )


def _first_non_number(column: pa.ChunkedArray, where: Callable[[int], str]) -> str:
    """Where a column stops being numeric: 'line N: value' (CSV lines; row N for Parquet)."""
    for index, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return f"{where(index)}: {str(value)[:40]!r}"
    return str(column.type)


def numeric_matrix(file_table: FileTable) -> np.ndarray:
    """Every column of `table` as a float64 matrix, null -> NaN; non-numeric columns and
    infinities are InvalidInput naming the column (and the line, where one is at fault)."""
    table = file_table.table
    bad = [
        f"{name!r} ({_first_non_number(column, file_table.where)})"
        for name, column in zip(table.column_names, table.columns, strict=True)
        if not _is_numeric(column.type)
    ]
    if bad:
        raise InvalidInput(
            f"non-numeric feature column(s): {'; '.join(bad)}, which the model has as numbers"
        )
    matrix = np.empty((table.num_rows, table.num_columns), dtype=np.float64)
    for index, column in enumerate(table.columns):
        # Integers beyond 2**53 round to the nearest double, as a JSON number does.
        values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        matrix[:, index] = values  # nulls arrive as NaN
    infinite = np.isinf(matrix).any(axis=0)
    if infinite.any():
        names = [table.column_names[i] for i in np.flatnonzero(infinite)]
        raise InvalidInput(f"column(s) {', '.join(map(repr, names))} hold infinity")
    return matrix


def split_target(file_table: FileTable, target: str) -> tuple[FileTable, list[Any]]:
    """The feature columns and the labels of `target` (integers or strings, none missing)."""
    table = file_table.table
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
            f"on {file_table.where(first)}. Drop those rows, or spell the label otherwise if it "
            f"is one of the spellings of a missing value ({', '.join(map(repr, MISSING[1:]))})"
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
    return FileTable(features, file_table.where), labels.to_pylist()
