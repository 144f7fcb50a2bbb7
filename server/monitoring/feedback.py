"""Feedback: true labels for captured rows, by request id or by key, kept in files of their
own (`labels/`) beside the rows and joined at report time (server.monitoring.rows), so a
label may come before its rows are written. What a feedback answers: how many captured rows
its labels reached, how many are pending (a request still in the capture queue), and which
ids or keys matched nothing (kept all the same: their rows may be a replica's, not written
yet, or expired).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from server.errors import InvalidInput
from server.monitoring import layout
from server.monitoring.rows import LABEL_SCHEMA, Answered
from server.store.atomic import write_atomically

EXAMPLES = 10  # unmatched ids or keys named in an answer


@dataclass(frozen=True)
class Labels:
    y: list[Any]
    request_id: str | None = None
    keys: list[str] | None = None


def check_classes(labels: Labels, classes: list[Any], name: str) -> None:
    known = {str(label) for label in classes}
    outside = sorted({str(label) for label in labels.y} - known)
    if outside:
        raise InvalidInput(
            f"label(s) {', '.join(map(repr, outside[:EXAMPLES]))} are not classes of model "
            f"'{name}' ({', '.join(map(repr, sorted(known)))})"
        )


def labels_table(labels: Labels) -> pa.Table:
    rows = len(labels.y)
    at = pa.array([time.time_ns() // 1_000_000] * rows, pa.int64()).cast(
        LABEL_SCHEMA.field("_time").type
    )
    ids: list[str | None] = [labels.request_id] * rows
    numbers: list[int | None] = list(range(rows))
    keys: list[str | None] = [None] * rows
    if labels.keys is not None:
        ids, numbers, keys = [None] * rows, [None] * rows, list(labels.keys)
    return pa.table(
        [pa.array(ids, pa.string()), pa.array(numbers, pa.int32()), pa.array(keys, pa.string()),
         pa.array([str(label) for label in labels.y], pa.string()), at],
        schema=LABEL_SCHEMA,
    )  # fmt: skip


def write_labels(directory: Path, table: pa.Table) -> None:
    folder = directory / layout.LABELS
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / layout.file_name(), lambda file: pq.write_table(table, file))


def request_rows(root: Path, name: str, request_id: str) -> pa.Table:
    """The captured rows of a request id: their `_row` and `_version` (blocking)."""
    columns = [("_request_id", pa.string()), ("_row", pa.int32()), ("_version", pa.int32())]
    return _captured(root, name, pa.schema(columns), ds.field("_request_id") == request_id)


def key_rows(root: Path, name: str, keys: list[str]) -> pa.Table:
    """The captured rows of these keys: their `_key` (blocking)."""
    return _captured(root, name, pa.schema([("_key", pa.string())]), ds.field("_key").isin(keys))


def _captured(root: Path, name: str, schema: pa.Schema, condition: ds.Expression) -> pa.Table:
    paths = [str(path) for _v, _h, path in layout.row_files(root, name)]
    if not paths:
        return schema.empty_table()
    return ds.dataset(paths, schema=schema, format="parquet").to_table(filter=condition)


def requests_named(rows: pa.Table, queued: list[Answered]) -> int:
    """How many requests a request id names: written (their first rows) and queued."""
    return int(pc.sum(pc.equal(rows.column("_row"), 0)).as_py() or 0) + len(queued)


def by_request(name: str, labels: Labels, rows: pa.Table, queued: list[Answered]) -> dict[str, Any]:
    """The counts of a feedback by request id (one request: `requests_named` checked);
    422 when its rows are not as many as its labels."""
    assert labels.request_id is not None
    given = len(labels.y)
    found = rows.num_rows or sum(batch.rows for batch in queued)
    if found and found != given:
        raise InvalidInput(
            f"request {labels.request_id!r} had {found} captured rows, and y has {given} "
            "labels: give one per row, in order"
        )
    if rows.num_rows:
        return _counts(name, given, 0, [])
    if queued:
        return _counts(name, 0, given, [])
    return _counts(name, 0, 0, [labels.request_id], given)


def by_keys(name: str, labels: Labels, rows: pa.Table, queued: list[Answered]) -> dict[str, Any]:
    """The counts of a feedback by keys: rows written, rows still queued, keys in neither."""
    assert labels.keys is not None
    wanted = set(labels.keys)
    seen = set(pc.unique(rows.column("_key")).to_pylist()) if rows.num_rows else set()
    pending = 0
    for batch in queued:
        for key in batch.keys or ():
            if key in wanted:
                pending += 1
                seen.add(key)
    missing = [key for key in dict.fromkeys(labels.keys) if key not in seen]
    return _counts(name, rows.num_rows, pending, missing, len(missing))


def _counts(
    name: str, matched: int, pending: int, examples: list[str], unmatched: int | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "matched": matched,
        "pending": pending,
        "unmatched": len(examples) if unmatched is None else unmatched,
        "unmatched_examples": examples[:EXAMPLES],
    }
