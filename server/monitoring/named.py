"""The captured rows that labels name, kept per file between reports.

A report scores the rows labels name. Finding them means reading the request ids (and keys)
of every captured file, so each file's named rows are kept (only the columns a report
reads), with the file's smallest and largest request id and key, and the label files read
so far. At the next report a kept file is matched again only if it changed, or if a label
file new since names an id or a key within its range: a file can only hold an id between
its smallest and largest, and ids this server makes grow with time (UUIDv7), so new labels
of recent requests reopen the recent files alone. A label file that changed or went (an
erasure, an expiry) matches every file again. A report's cost then follows the rows
captured and labelled since the last one, not every labelled row of the window.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from server.monitoring.layout import Stamp, stamp
from server.monitoring.rows import LABEL_SCHEMA, captured_between, read_label_files

# What a report reads of a named row (server.monitoring.report, rows.with_labels).
REPORT_COLUMNS = ("_time", "_request_id", "_row", "_key", "_prediction", "_probabilities")
Range = tuple[str, str] | None  # the smallest and largest value of a column (None: none)


@dataclass(frozen=True)
class _Kept:
    stamp: Stamp
    ids: Range
    keys: Range
    named: pa.Table | None  # its rows the labels named, with REPORT_COLUMNS
    times: tuple[int, int] = (0, 0)  # their first and last capture time (milliseconds)

    def named_between(self, since: int, until: int) -> pa.Table | None:
        """Its named rows captured in [since, until)."""
        if self.named is None or self.times[1] < since or self.times[0] >= until:
            return None
        if since <= self.times[0] and self.times[1] < until:
            return self.named
        return self.named.filter(captured_between(self.named["_time"], since, until))


class NamedRows:
    """One name's kept matches (a report at a time: a second waits, then reuses them)."""

    def __init__(self) -> None:
        self._labels: dict[str, tuple[Stamp, pa.Table]] = {}  # label file: its stamp, rows
        self._every_label = LABEL_SCHEMA.empty_table()  # theirs together, in one chunk
        self._files: dict[str, _Kept] = {}
        self._lock = threading.Lock()

    def read(
        self, label_paths: list[Path], row_paths: dict[int, list[Path]], since: int, until: int
    ) -> tuple[pa.Table, dict[int, pa.Table]]:
        """Every label, and per version its rows of these files captured in [since, until)
        (milliseconds) that a label names by request id or by key (blocking)."""
        with self._lock:
            labels, new = self._read_labels(label_paths)
            if new is None:
                self._files.clear()
                new = labels
            ids, keys = _ids_and_keys(labels)
            if not len(ids) and not len(keys):  # nothing labelled: no file need be opened
                self._files.clear()
                return labels, {}
            new_ids, new_keys = (sorted(values.to_pylist()) for values in _ids_and_keys(new))
            found: dict[int, pa.Table] = {}
            listed: set[str] = set()
            for version, files in row_paths.items():
                parts = []
                for path in files:
                    listed.add(str(path))
                    kept = self._kept(path, ids, keys, new_ids, new_keys)
                    inside = None if kept is None else kept.named_between(since, until)
                    if inside is not None and inside.num_rows:
                        parts.append(inside)
                if parts:
                    found[version] = pa.concat_tables(parts, promote_options="permissive")
            for gone in [kept for kept in self._files if kept not in listed]:
                del self._files[gone]  # expired, erased, or outside the window now
            return labels, found

    def _read_labels(self, paths: list[Path]) -> tuple[pa.Table, pa.Table | None]:
        """Every label, and those of label files new since the last call; None for the new
        ones when a label file read before changed or went."""
        seen: dict[str, tuple[Stamp, pa.Table]] = {}
        new: list[pa.Table] = []
        changed = False  # a file read before is read again, or gone: every label may differ
        for path in paths:
            try:
                found = stamp(path)
            except FileNotFoundError:
                continue
            kept = self._labels.get(str(path))
            if kept is None or kept[0] != found:
                changed |= kept is not None
                kept = (found, read_label_files([path]))
                new.append(kept[1])
            seen[str(path)] = kept
        changed |= any(path not in seen for path in self._labels)
        self._labels = seen
        if changed:
            self._every_label = _together([table for _, table in seen.values()])
            return self._every_label, None
        added = _together(new)
        if new:  # appended: the labels read before are kept as they were
            self._every_label = _together([self._every_label, added])
        return self._every_label, added

    def _kept(
        self, path: Path, ids: pa.Array, keys: pa.Array, new_ids: list[str], new_keys: list[str]
    ) -> _Kept | None:
        try:
            found = stamp(path)
            kept = self._files.get(str(path))
            if kept is None or kept.stamp != found or _may_name(kept, new_ids, new_keys):
                kept = _match(path, found, ids, keys)
                self._files[str(path)] = kept
            return kept
        except FileNotFoundError:  # expired or erased since it was listed
            return None


def _together(tables: list[pa.Table]) -> pa.Table:
    """Label tables as one, in one chunk (a report joins and sorts them)."""
    return pa.concat_tables(tables).combine_chunks() if tables else LABEL_SCHEMA.empty_table()


def _ids_and_keys(labels: pa.Table) -> tuple[pa.Array, pa.Array]:
    """The request ids that labels by id give, and the keys that labels by key give."""
    by_id = labels["_request_id"].filter(pc.is_null(labels["_key"]))
    return pc.unique(by_id).drop_null(), pc.unique(labels["_key"]).drop_null()


def _within(ordered: list[str], bounds: Range) -> bool:
    """Whether any of these values (sorted) is within the bounds."""
    if bounds is None:
        return False
    first = bisect.bisect_left(ordered, bounds[0])
    return first < len(ordered) and ordered[first] <= bounds[1]


def _may_name(kept: _Kept, new_ids: list[str], new_keys: list[str]) -> bool:
    """Whether new labels may name rows of a kept file: an id or a key within its range."""
    return _within(new_ids, kept.ids) or _within(new_keys, kept.keys)


def _range(column: pa.ChunkedArray) -> Range:
    low, high = (value.as_py() for value in pc.min_max(column).values())
    return None if low is None else (low, high)


def _match(path: Path, found: Stamp, ids: pa.Array, keys: pa.Array) -> _Kept:
    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    has_key = "_key" in names
    index = file.read(columns=["_request_id", *(["_key"] if has_key else [])])
    wanted = pc.is_in(index["_request_id"], value_set=ids)
    if has_key and len(keys):
        wanted = pc.or_(wanted, pc.fill_null(pc.is_in(index["_key"], value_set=keys), False))
    key_range = _range(index["_key"]) if has_key else None
    if not pc.any(wanted).as_py():
        return _Kept(found, _range(index["_request_id"]), key_range, None)
    named = file.read(columns=[c for c in REPORT_COLUMNS if c in names]).filter(wanted)
    first, last = (
        value.as_py() for value in pc.min_max(pc.cast(named["_time"], pa.int64())).values()
    )
    return _Kept(found, _range(index["_request_id"]), key_range, named, (first, last))
