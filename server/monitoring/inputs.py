"""`config.from_capture` on `/fit` and `/evaluate`: the labelled captured rows of a window
as the table and labels the request would otherwise have carried.

A fit learns them with the columns' kinds they were captured with (a categorical column is
captured as text: declared categorical again, unless the request declares otherwise), and
may carry a table of its own too (records or a file, trained on both). Its version keeps
the window in its metadata (`trained_from_capture`), and an evaluation of that version
never scores it on rows captured in that window: they are left out, and counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from server.errors import InvalidInput
from server.ingest.features import TableFeatures
from server.ingest.inputs import EvaluateInput, FitInput
from server.ingest.limits import TableLimits
from server.ingest.tables import FileTable
from server.monitoring.monitor import Monitor
from server.monitoring.windows import Window, iso, window
from server.tables.levels import is_text_type
from server.tables.raw import RawColumn, RawTable

TRAINED = "trained_from_capture"  # the metadata's record of the window a version learned


async def fit_input(monitor: Monitor, request: FitInput, limits: TableLimits) -> FitInput:
    config = request.config
    source = config.from_capture
    span = window(source.since, source.until)
    table, y, _ = await monitor.labelled_rows(source.name, span)
    given = len(request.y)
    if given and request.feature_names is None:
        raise InvalidInput("a table sent with from_capture needs column names: records or a file")
    limits.check_rows(table.num_rows + given)
    if config.categorical_features is None:  # captured as text: categorical, as it was
        captured_text = [n for n, c in zip(table.column_names, table.columns, strict=True)
                         if is_text_type(c.type)]  # fmt: skip
        config = config.model_copy(update={"categorical_features": captured_text or None})
    provenance = {"name": source.name, "since": iso(span[0]), "until": iso(span[1]),
                  "captured_rows": table.num_rows, "table_rows": given}  # fmt: skip
    if not given:
        raw = RawTable(list(table.columns), table.num_rows, where=_row)
        return FitInput(config, raw, y, table.column_names, provenance)
    names, raw = _joined(request.raw, request.feature_names or [], table)
    return FitInput(config, raw, [*request.y, *y], names, provenance)


def _joined(raw: RawTable, names: list[str], captured: pa.Table) -> tuple[list[str], RawTable]:
    """The table's columns, then the captured rows' (gaps where one side has no column),
    as lists of plain values: one form for both."""
    every = [*names, *(name for name in captured.column_names if name not in names)]
    given = dict(zip(names, raw.columns, strict=True))
    columns: list[RawColumn] = []
    for name in every:
        left = _values(given[name]) if name in given else [None] * raw.rows
        right = captured.column(name).to_pylist() if name in captured.column_names else None
        columns.append(left + (right if right is not None else [None] * captured.num_rows))
    return every, RawTable(columns, raw.rows + captured.num_rows)


def _values(column: RawColumn) -> list[Any]:
    if isinstance(column, list):
        return column
    values = column.tolist() if isinstance(column, np.ndarray) else column.to_pylist()
    return [None if value != value else value for value in values]  # NaN: missing


async def evaluate_input(
    monitor: Monitor, request: EvaluateInput, limits: TableLimits, trained: Window | None
) -> tuple[EvaluateInput, int]:
    """The rows, and how many were left out as rows the version trained on (`trained`)."""
    source: Any = request.config.from_capture
    table, y, left_out = await monitor.labelled_rows(
        source.name, window(source.since, source.until), trained
    )
    limits.check_rows(table.num_rows)
    features = TableFeatures(FileTable(table, _row))
    return EvaluateInput(config=request.config, features=features, y=y), left_out


def trained_window(metadata: dict[str, Any], source: str) -> Window | None:
    """The window of `source`'s captured rows a version trained on (None: none)."""
    found = metadata.get(TRAINED)
    if not found or found.get("name") != source:
        return None
    return window(datetime.fromisoformat(found["since"]), datetime.fromisoformat(found["until"]))


def _row(index: int) -> str:
    return f"captured row {index + 1}"
