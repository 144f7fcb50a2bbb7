"""Captured rows as tables: the table one request's rows become, and the rows of a window
read back with their labels.

A captured row holds the model's features by column name (numbers as float64, null where
missing; categorical cells as the text received, so an unseen level stays distinct from a
missing one), then columns of its own, named with a leading underscore:

    _request_id  _row  _time  _version  _prediction  _probabilities  _key

`_prediction` is the answered class as text, `_probabilities` one value per class in the
model's order, `_key` the request's `config.key` column (null without one). Labels join on
(`_request_id`, `_row`) or on `_key`, whichever was given last (`_label`). A feature whose
name starts with an underscore is written with one more (`_label` as `__label`), so that no
feature ever meets a column of the capture's own; reading takes it off again.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from server.ingest.features import Features
from server.monitoring import layout
from server.tables.columns import Columns
from server.tables.levels import levels_array
from server.tables.raw import RawColumn

TIME = pa.timestamp("ms", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
META = ("_request_id", "_row", "_time", "_version", "_prediction", "_probabilities", "_key")
OWN = frozenset({*META, "_label"})
LABEL_SCHEMA = pa.schema(
    [("_request_id", pa.string()), ("_row", pa.int32()), ("_key", pa.string()),
     ("_label", pa.string()), ("_time", TIME)]
)  # fmt: skip


class Model(Protocol):
    """What the writer asks of the model that answered (server.inference.loaded)."""

    @property
    def model_columns(self) -> Columns: ...

    def probabilities(self, X: np.ndarray) -> np.ndarray: ...


def stored(feature: str) -> str:
    """The column a feature is written as."""
    return f"_{feature}" if feature.startswith("_") else feature


def features_of(rows: pa.Table) -> pa.Table:
    """The feature columns of captured rows, under the features' own names."""
    names = [name for name in rows.column_names if name not in OWN]
    return rows.select(names).rename_columns([name[1:] if name.startswith("_") else name
                                              for name in names])  # fmt: skip


@dataclass(frozen=True, slots=True)
class Answered:
    """One request's rows and what the model answered, as /predict hands them to the capture:
    arrays and lists as they were, nothing converted on the event loop. Only what is
    written is kept (the categorical cells as sent, not the whole request)."""

    name: str
    version: int
    request_id: str
    at: float  # seconds since the epoch
    model: Model
    cells: dict[str, RawColumn]  # the categorical columns written, as the request sent them
    X: np.ndarray  # the rows as the model computed on them (numbers, codes)
    predictions: list[Any]
    probabilities: list[list[float]] | None  # None: not asked for, computed by the writer
    keys: list[str | None] | None
    exclude: frozenset[str]
    nbytes: int  # about what it holds in memory: the queue is bounded in bytes too

    @property
    def rows(self) -> int:
        return len(self.X)


def answered(
    name: str, version: int, request_id: str, at: float, model: Model, features: Features,
    X: np.ndarray, predictions: list[Any], probabilities: list[list[float]] | None,
    keys: list[str | None] | None, exclude: frozenset[str],
) -> Answered:  # fmt: skip
    columns = model.model_columns
    cells = {
        column.name: features.raw_column(columns, index)
        for index, column in enumerate(columns.columns)
        if column.categorical and column.name not in exclude
    }
    size = X.nbytes + 16 * len(predictions) * (2 + (len(probabilities[0]) if probabilities else 0))
    size += sum(_size(values) for values in cells.values()) + _size(keys or [])
    return Answered(name, version, request_id, at, model, cells, X, predictions, probabilities,
                    keys, exclude, size)  # fmt: skip


def _size(values: RawColumn | list[Any]) -> int:
    if isinstance(values, np.ndarray):
        return int(values.nbytes)
    if isinstance(values, list):
        return 8 * len(values) + sum(len(v) for v in values if isinstance(v, str))
    return int(values.nbytes)


def captured_table(answers: list[Answered]) -> pa.Table:
    """Many requests' rows as one table (one model version, one setting): the arrays are
    joined first and converted once, so a thousand 1-row requests cost about what one
    request of a thousand rows does; so do the probabilities the requests did not ask for,
    computed here in one call."""
    first = answers[0]
    columns, exclude, version = first.model.model_columns, first.exclude, first.version
    X = first.X if len(answers) == 1 else np.concatenate([a.X for a in answers])
    data: dict[str, pa.Array] = {}
    for index, column in enumerate(columns.columns):
        if column.name in exclude:
            continue
        if column.categorical:
            data[stored(column.name)] = _levels([a.cells[column.name] for a in answers],
                                                column.name)  # fmt: skip
        else:
            data[stored(column.name)] = pa.array(X[:, index], pa.float64(), from_pandas=True)
    counts = np.fromiter((a.rows for a in answers), np.int64, len(answers))
    ids = pa.array([a.request_id for a in answers], pa.string())
    data["_request_id"] = pc.take(ids, pa.array(np.repeat(np.arange(len(answers)), counts)))
    data["_row"] = pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in counts]))
    times = np.fromiter((int(a.at * 1000) for a in answers), np.int64, len(answers))
    data["_time"] = pa.array(np.repeat(times, counts)).cast(TIME)
    data["_version"] = pa.array(np.full(len(X), version, np.int32))
    data["_prediction"] = pa.array([str(p) for a in answers for p in a.predictions], pa.string())
    probabilities = _probabilities(answers, X)
    flat = pa.array(probabilities.ravel(), pa.float64())
    data["_probabilities"] = pa.FixedSizeListArray.from_arrays(flat, probabilities.shape[1]).cast(
        pa.list_(pa.float64())
    )
    keys = [k for a in answers for k in (a.keys if a.keys is not None else [None] * a.rows)]
    data["_key"] = pa.array(keys, pa.string())
    return pa.table(data)


def _probabilities(answers: list[Answered], X: np.ndarray) -> np.ndarray:
    if all(a.probabilities is None for a in answers):  # the usual case: one call for all
        return answers[0].model.probabilities(X)
    return np.concatenate([
        np.asarray(a.probabilities, np.float64) if a.probabilities is not None
        else a.model.probabilities(a.X)
        for a in answers
    ])  # fmt: skip


def _levels(parts: list[Any], name: str) -> pa.Array:
    """The requests' cells of one categorical column as text, converted in one go where
    they came in one form (JSON values, or numbers)."""
    if all(isinstance(part, list) for part in parts):
        return levels_array([value for part in parts for value in part], name)
    if all(isinstance(part, np.ndarray) for part in parts):
        return levels_array(np.concatenate(parts), name)
    return pa.concat_arrays([levels_array(part, name) for part in parts])


def read_rows(
    root: Path, name: str, since: datetime | None, until: datetime | None,
    version: int | None = None,
) -> dict[int, pa.Table]:  # fmt: skip
    """The name's captured rows of the window, per version (every writer's files)."""
    files = layout.row_files_by_version(root, name, since, until)
    tables = {}
    for found, found_paths in sorted(files.items()):
        if version is not None and found != version:
            continue
        paths = [str(path) for path in found_paths]
        schema = pa.unify_schemas([pq.read_schema(path) for path in paths])
        dataset = ds.dataset(paths, schema=schema, format="parquet")
        condition = None
        if since is not None:
            condition = ds.field("_time") >= _row_time(since)
        if until is not None:
            before = ds.field("_time") < _row_time(until)
            condition = before if condition is None else condition & before
        tables[found] = dataset.to_table(filter=condition)
    return tables


def window_ms(moment: datetime) -> int:
    """A window's end against the rows' milliseconds: a row of millisecond t is at or after
    `moment` exactly when t >= `moment` rounded up (since inclusive, until exclusive, the
    given times at full precision)."""
    microseconds = (moment - EPOCH) // timedelta(microseconds=1)
    return -(-microseconds // 1000)


def _row_time(moment: datetime) -> pa.Scalar:
    return pa.scalar(window_ms(moment), pa.int64()).cast(TIME)


def rows_between(rows: pa.Table, since: datetime, until: datetime) -> pa.ChunkedArray:
    """Which rows were captured in [since, until)."""
    return captured_between(rows.column("_time"), window_ms(since), window_ms(until))


def captured_between(times: pa.ChunkedArray, since: int, until: int) -> pa.ChunkedArray:
    """Which of these capture times are in [since, until) (milliseconds, `window_ms`)."""
    milliseconds = pc.cast(times, pa.int64())
    return pc.and_(pc.greater_equal(milliseconds, since), pc.less(milliseconds, until))


def read_labels(root: Path, name: str) -> pa.Table:
    return read_label_files(layout.label_files(root, name))


def read_label_files(paths: list[Path]) -> pa.Table:
    """Label files as one table of LABEL_SCHEMA (a column a file lacks is null)."""
    if not paths:
        return LABEL_SCHEMA.empty_table()
    files = [str(path) for path in paths]
    return ds.dataset(files, schema=LABEL_SCHEMA, format="parquet").to_table()


def repeated_ids(tables: list[pa.Table]) -> frozenset[str]:
    """Request ids that name more than one captured request (a caller's id sent twice):
    a label by such an id could be another row's, so it labels none."""
    firsts = [t.filter(pc.equal(t.column("_row"), 0)).column("_request_id") for t in tables]
    if not firsts:
        return frozenset()
    counted = pc.value_counts(pa.chunked_array(firsts, pa.string()))
    twice = pc.greater(counted.field("counts"), 1)
    return frozenset(counted.field("values").filter(twice).to_pylist())


def with_labels(
    rows: pa.Table, labels: pa.Table, repeated: frozenset[str] = frozenset()
) -> pa.Table:
    """`rows` with `_label` (null where none): the last label given for the row, by its
    request id and row number (never for an id in `repeated`) or by its key. Joined by
    pyarrow (no Python loop over the rows: a report over a million holds no GIL for it)."""
    labels = labels.sort_by("_time")
    by_key = labels.filter(pc.is_valid(labels.column("_key")))
    by_id = labels.filter(pc.and_(pc.is_null(labels.column("_key")),
                                  pc.is_valid(labels.column("_request_id"))))  # fmt: skip
    if repeated:
        named_twice = pa.array(sorted(repeated), pa.string())
        by_id = by_id.filter(pc.invert(pc.is_in(by_id.column("_request_id"), named_twice)))
    order = pa.array(np.arange(rows.num_rows, dtype=np.int64))
    joined_on = ["_request_id", "_row", *(["_key"] if "_key" in rows.column_names else [])]
    keyed = rows.select(joined_on).append_column("__order", order)
    found = keyed.join(_last(by_id, ["_request_id", "_row"], "id"), ["_request_id", "_row"])
    if "_key" in rows.column_names:
        found = found.join(_last(by_key, ["_key"], "key"), ["_key"])
    found = found.sort_by("__order")
    label = found.column("id_label")
    if "key_label" in found.column_names:  # a key's label wins when it was given later
        later = pc.fill_null(pc.greater(found.column("key_time"), found.column("id_time")), True)
        use_key = pc.and_(pc.is_valid(found.column("key_label")), later)
        label = pc.if_else(use_key, found.column("key_label"), label)
    return rows.append_column("_label", pc.cast(label, pa.string()))


def _last(labels: pa.Table, keys: list[str], prefix: str) -> pa.Table:
    """Per key, the last label given and when (`labels` sorted by time)."""
    last = labels.group_by(keys, use_threads=False).aggregate(
        [("_label", "last"), ("_time", "last")]
    )
    return last.rename_columns([*keys, f"{prefix}_label", f"{prefix}_time"])


def labelled(rows: pa.Table) -> pa.Table:
    return rows.filter(pc.is_valid(rows.column("_label")))


def exported(rows: pa.Table, csv: bool) -> bytes:
    """Parquet, or CSV (the probabilities as JSON text: CSV has no lists)."""
    sink = io.BytesIO()
    if not csv:
        pq.write_table(rows, sink)
        return sink.getvalue()
    if "_probabilities" in rows.column_names:
        text = [json.dumps(p) for p in rows.column("_probabilities").to_pylist()]
        index = rows.column_names.index("_probabilities")
        rows = rows.set_column(index, "_probabilities", pa.array(text, pa.string()))
    pacsv.write_csv(rows, sink)
    return sink.getvalue()
