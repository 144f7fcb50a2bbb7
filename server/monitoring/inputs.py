"""`config.from_capture` on `/fit` and `/evaluate`: the labelled captured rows of a window
as the table and labels the request would otherwise have carried."""

from __future__ import annotations

from typing import Any

from server.ingest.features import TableFeatures
from server.ingest.inputs import EvaluateInput, FitInput
from server.ingest.limits import TableLimits
from server.ingest.tables import FileTable
from server.monitoring.monitor import Monitor, window
from server.tables.raw import RawTable


async def fit_input(monitor: Monitor, request: FitInput, limits: TableLimits) -> FitInput:
    config = request.config
    source = config.from_capture
    table, y = await monitor.labelled_rows(source.name, window(source.since, source.until))
    limits.check_rows(table.num_rows)
    raw = RawTable(list(table.columns), table.num_rows, where=_row)
    return FitInput(config=config, raw=raw, y=y, feature_names=table.column_names)


async def evaluate_input(
    monitor: Monitor, request: EvaluateInput, limits: TableLimits
) -> EvaluateInput:
    source: Any = request.config.from_capture
    table, y = await monitor.labelled_rows(source.name, window(source.since, source.until))
    limits.check_rows(table.num_rows)
    return EvaluateInput(config=request.config, features=TableFeatures(FileTable(table, _row)), y=y)


def _row(index: int) -> str:
    return f"captured row {index + 1}"
