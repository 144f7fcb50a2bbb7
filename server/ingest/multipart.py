"""`multipart/form-data` bodies: a CSV or Parquet `file`, a `target` column, a JSON `config`.

Starlette's parser (python-multipart) reads the form as it arrives, under the body-size
limit. It keeps the file in memory, as a JSON body is kept: spooling it to a temporary file
(Starlette's default past 1 MiB) cost most of a big Parquet upload's time (see the
earlier performance runs, docs/performance-history.md). pyarrow then
reads the table in a worker thread (`server.ingest.tables`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from server.errors import InvalidInput
from server.ingest.features import TableFeatures
from server.ingest.inputs import ConfigT, EvaluateInput, FitInput, RowsInput
from server.ingest.json_body import ConfigModel, parse_config
from server.ingest.limits import TableLimits
from server.ingest.tables import FileTable, read_table, split_target
from server.ml.labels import read_labels
from server.schemas import EvaluateConfig
from server.tables.raw import RawTable

MULTIPART = "multipart/form-data"


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(MULTIPART)


class _InMemoryFormParser(MultiPartParser):
    # Larger than any body the size limit lets through: the file never goes to disk.
    spool_max_size = 2**63


async def _form(request: Request, fields: set[str]) -> FormData:
    # One file, and the text fields; each text field at most 1 MiB (Starlette's default).
    parser = _InMemoryFormParser(
        request.headers, request.stream(), max_files=1, max_fields=len(fields) - 1
    )
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise InvalidInput(f"the multipart body is malformed: {error.message}") from None
    missing, unknown = fields - form.keys(), form.keys() - fields
    if missing:
        raise InvalidInput(f"missing form field(s): {', '.join(sorted(missing))}")
    if unknown:
        raise InvalidInput(f"unknown form field(s): {', '.join(sorted(unknown))}")
    if not isinstance(form["file"], UploadFile):
        raise InvalidInput("the form field 'file' must be a file (curl: -F file=@train.csv)")
    for field in fields - {"file"}:
        if not isinstance(form[field], str):
            raise InvalidInput(f"the form field {field!r} must be text, not a file")
    return form


def _config_json(form: FormData) -> Any:
    text = form["config"]
    try:
        return orjson.loads(text)  # type: ignore[arg-type]
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"the form field 'config' is not valid JSON: {error}") from None


async def _table(
    form: FormData, limits: TableLimits, text_columns: list[str] | None = None
) -> FileTable:
    """The file's table; its temporary file is closed (deleted) once read."""
    upload = form["file"]
    assert isinstance(upload, UploadFile)
    try:
        return await asyncio.to_thread(read_table, upload.file, limits, text_columns)
    finally:
        await form.close()


async def _labelled(
    request: Request, config_model: type[ConfigModel], limits: TableLimits, text: bool = False
) -> tuple[ConfigModel, FileTable, list[Any]]:
    """A form with a `target`: its config, its feature columns and its labels; with `text`,
    the columns the config declares categorical are read as text (a fit's)."""
    form = await _form(request, {"file", "target", "config"})
    config = parse_config(config_model, _config_json(form))
    target = str(form["target"])
    declared = getattr(config, "categorical_features", None) if text else None
    names = [name for name in declared or () if isinstance(name, str)]
    features, values = split_target(await _table(form, limits, names), target)
    return config, features, read_labels(values, field=f"the target column {target!r}")


async def read_labelled(
    request: Request, config_model: type[ConfigModel], limits: TableLimits
) -> tuple[ConfigModel, FileTable, list[Any]]:
    """A file of rows with their `target` labels, and its config (feedback's)."""
    return await _labelled(request, config_model, limits)


async def read_fit(request: Request, config_type: type[BaseModel], limits: TableLimits) -> FitInput:
    config, features, y = await _labelled(request, config_type, limits, text=True)
    raw = RawTable(list(features.table.columns), features.table.num_rows, where=features.where)
    return FitInput(config=config, raw=raw, y=y, feature_names=list(features.table.column_names))


async def read_rows(
    request: Request, limits: TableLimits, config_type: type[ConfigT]
) -> RowsInput[ConfigT]:
    """A table file and a config of `config_type` (/predict, /explain)."""
    form = await _form(request, {"file", "config"})
    config = parse_config(config_type, _config_json(form))
    table = await _table(form, limits)
    return RowsInput(config=config, features=TableFeatures(table))


async def read_evaluate(request: Request, limits: TableLimits) -> EvaluateInput:
    config, features, y = await _labelled(request, EvaluateConfig, limits)
    return EvaluateInput(config=config, features=TableFeatures(features), y=y)
