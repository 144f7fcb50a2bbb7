"""Feedback: true labels for captured rows, by request id or by key, kept in files of their
own (`labels/`) beside the rows and joined at report time (server.monitoring.rows), so a
label may come before its rows are written. What a feedback answers: how many captured rows
its labels reached, how many are pending (a request still in the capture queue), and which
ids or keys matched nothing (kept all the same: their rows may be a replica's, not written
yet, or expired).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from server.errors import InvalidInput
from server.monitoring import layout
from server.monitoring.rows import LABEL_SCHEMA
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


def _captured(root: Path, name: str, column: str, values: list[str]) -> pa.Table:
    paths = [str(path) for _v, _h, path in layout.row_files(root, name)]
    if not paths:
        return pa.table({column: pa.array([], pa.string()), "_row": pa.array([], pa.int32())})
    schema = pa.schema([(column, pa.string()), ("_row", pa.int32())])
    dataset = ds.dataset(paths, schema=schema, format="parquet")
    return dataset.to_table(filter=ds.field(column).isin(values))


def matched(
    root: Path, name: str, labels: Labels, pending: Callable[[str], bool]
) -> dict[str, Any]:
    """The counts a feedback answers (reads the captured rows' ids or keys); 422 when a
    request id's rows are found and are not as many as its labels."""
    if labels.request_id is not None:
        found = _captured(root, name, "_request_id", [labels.request_id]).num_rows
        given = len(labels.y)
        if found and found != given:
            raise InvalidInput(
                f"request {labels.request_id!r} had {found} captured rows, and y has {given} "
                "labels: give one per row, in order"
            )
        if found:
            return _counts(name, given, 0, [])
        if pending(labels.request_id):
            return _counts(name, 0, given, [])
        return _counts(name, 0, 0, [labels.request_id], given)
    assert labels.keys is not None
    rows = _captured(root, name, "_key", labels.keys)
    seen = set(pc.unique(rows.column("_key")).to_pylist()) if rows.num_rows else set()
    missing = [key for key in dict.fromkeys(labels.keys) if key not in seen]
    return _counts(name, rows.num_rows, 0, missing, len(missing))


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
