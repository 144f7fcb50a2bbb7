"""Capture: the rows a model answered, written to Parquet by a thread of their own.

`/predict` hands each sampled request over as one `Answered` (its arrays, not an object per
row) to a queue bounded in rows (CAPTURE_QUEUE_ROWS) and in bytes (CAPTURE_QUEUE_MB). A full queue
drops the request's rows and counts them: the event loop never waits for the disk. The
writer wakes every CAPTURE_FLUSH_SECONDS (sooner when the queue is half full), turns the
batches into tables, and writes one file per name, version and hour (server.monitoring.
layout): a file holds at most one flush's rows, and a new hour starts a new folder. A write
the disk refuses drops and counts its rows too. Counts are kept beside the files
(`dropped.json`), per version and hour, so the report can say what it never saw.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from server.monitoring import layout
from server.monitoring.locking import FilesLock
from server.monitoring.reserve import Reserve, is_full
from server.monitoring.rows import Answered, captured_table
from server.store.atomic import write_bytes_atomically

logger = logging.getLogger("server")
Key = tuple[str, int]  # name, version
EXPIRY_CHECK_SECONDS = 600.0
# Requests made into a table at a time: between two, the writer lets the event loop run.
CHUNK = 500


class Capture:
    def __init__(
        self, root: Path, writer: str, max_rows: int, flush_seconds: float, retention_days: float,
        max_bytes: int = 256 << 20,
    ) -> None:  # fmt: skip
        self.root, self.directory = root, root / writer
        # Whether a name still exists: the rows of a removed one are never written (a
        # replica may hold some when the primary removes it).
        self.keeps: Callable[[str], bool] = lambda name: True
        self.max_rows, self.max_bytes, self.flush_seconds = max_rows, max_bytes, flush_seconds
        self.retention = timedelta(days=retention_days)
        self._queue: deque[Answered] = deque()
        self._rows = self._bytes = 0
        self._lock = threading.Lock()  # the queue's
        self.files = FilesLock()  # reading and adding files against deleting them
        self.reserve = Reserve(self.directory)  # room for the drop counts on a full disk
        self._drops = threading.Lock()  # moving drop counts to their file against reading them
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_expiry = 0.0
        self._writing: list[Answered] = []  # taken from the queue, not written yet
        self.captured: Counter[Key] = Counter()  # rows written by this process
        self.dropped: Counter[Key] = Counter()  # rows dropped by this process
        self._dropped_hours: dict[str, dict[str, dict[str, int]]] = {}  # as in dropped.json
        self._dirty: set[str] = set()

    # -- the event loop's side -------------------------------------------------------------
    def offer(self, batch: Answered) -> bool:
        """Queue the batch, or drop it (counted) if the queue is full. Never blocks."""
        with self._lock:
            if (
                self._rows + batch.rows > self.max_rows
                or self._bytes + batch.nbytes > self.max_bytes
            ):
                self._count_dropped(batch.name, batch.version, batch.at, batch.rows)
                return False
            self._queue.append(batch)
            self._rows += batch.rows
            self._bytes += batch.nbytes
            full = self._rows * 2 >= self.max_rows or self._bytes * 2 >= self.max_bytes
        if full:
            self._wake.set()
        return True

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write every row queued so far, then stop."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def waiting(self, name: str) -> list[Answered]:
        """The name's requests that wait for the writer (feedback's `pending`): a scan of
        the queue, so that /predict keeps no index of them."""
        with self._lock:
            waiting = [*self._writing, *self._queue]
        return [batch for batch in waiting if batch.name == name]

    def erase(self, name: str) -> None:
        """Forget the name's queued rows; the caller deletes its files, holding `files`
        exclusively."""
        with self._lock:
            kept = deque(batch for batch in self._queue if batch.name != name)
            self._queue = kept
            self._rows = sum(batch.rows for batch in kept)
            self._bytes = sum(batch.nbytes for batch in kept)
            self._dropped_hours.pop(name, None)
            self._dirty.discard(name)

    def drop_counts(self, name: str) -> list[dict[str, dict[str, int]]]:
        """Every writer's drop counts of `name` (its `dropped.json`), and this server's not
        written yet: each version -> hour -> rows (blocking)."""
        with self._drops, self.files.shared():
            found = [
                json.loads(path.read_bytes()) for path in layout.dropped_files(self.root, name)
            ]
            with self._lock:
                unwritten = self._dropped_hours.get(name, {})
                found.append({version: dict(hours) for version, hours in unwritten.items()})
        return found

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stopping
            try:
                self.flush()
                if time.monotonic() >= self._next_expiry:
                    self._next_expiry = time.monotonic() + EXPIRY_CHECK_SECONDS
                    self.expire()
            except Exception:  # the writer never stops: the next flush tries again
                logger.exception("capture: writing failed")
            if stopping:
                return

    def flush(self) -> None:
        with self._lock:
            batches, self._queue, self._rows, self._bytes = list(self._queue), deque(), 0, 0
            self._writing = batches
        groups: dict[tuple[str, int, int], list[Answered]] = {}
        for batch in batches:
            key = (batch.name, batch.version, int(batch.at // 3600))
            groups.setdefault(key, []).append(batch)
        room = self.reserve.ensure() if groups else True
        with self.files.shared():  # adding files: readers may go on, erasure waits
            for (name, version, hours), group in groups.items():
                if not self.keeps(name):
                    continue
                if room:
                    self._write(name, version, layout.hour_of(hours * 3600), group)
                else:  # a full disk: what the reserve frees is the counts'
                    self._drop(name, version, group)
            self._write_drop_counts()
            # Inside the files' lock: feedback, holding it alone, sees a request in a file
            # or waiting, never in both (nor in neither).
            with self._lock:
                self._writing = []

    def _write(self, name: str, version: int, hour: str, group: list[Answered]) -> None:
        tables = []
        for same in _by_setting(group):  # the columns kept change with capture_exclude
            for start in range(0, len(same), CHUNK):
                chunk = same[start : start + CHUNK]
                try:
                    tables.append(captured_table(chunk))
                except Exception as error:  # cells the table can't hold: dropped, counted
                    logger.error("capture: rows of '%s' could not be kept: %s", name, error)
                    with self._lock:
                        for batch in chunk:
                            self._count_dropped(name, version, batch.at, batch.rows)
                time.sleep(0)  # the event loop's turn: it never waits long for the GIL
        if not tables:
            return
        table = pa.concat_tables(tables, promote_options="permissive")
        folder = self.directory / name / layout.ROWS / f"version={version}" / f"hour={hour}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            layout.write_whole(folder / layout.file_name(), table)
        except OSError as error:  # a full or read-only disk: dropped, counted
            logger.error("capture: rows of '%s' could not be written: %s", name, error)
            self._drop(name, version, group)
            return
        self.captured[(name, version)] += table.num_rows

    def _drop(self, name: str, version: int, group: list[Answered]) -> None:
        with self._lock:
            for batch in group:
                self._count_dropped(name, version, batch.at, batch.rows)

    def _count_dropped(self, name: str, version: int, at: float, rows: int) -> None:
        """Under the queue's lock."""
        self.dropped[(name, version)] += rows
        self._add_drop(name, str(version), layout.hour_of(at), rows)

    def _add_drop(self, name: str, version: str, hour: str, rows: int) -> None:
        hours = self._dropped_hours.setdefault(name, {}).setdefault(version, {})
        hours[hour] = hours.get(hour, 0) + rows
        self._dirty.add(name)

    def _write_drop_counts(self) -> None:
        with self._drops:  # a reader sees counts in memory or in the file, never in neither
            self._move_drop_counts()

    def _move_drop_counts(self) -> None:
        with self._lock:
            dirty = {name: self._dropped_hours.pop(name, {}) for name in self._dirty}
            self._dirty.clear()
        for name, counts in dirty.items():
            if not self.keeps(name):
                continue
            path = self.directory / name / layout.DROPPED
            try:
                try:
                    _add_counts(path, counts)
                except OSError as error:  # a full disk: the reserve's room is for this
                    if not (is_full(error) and self.reserve.release()):
                        raise
                    _add_counts(path, counts)
            except (OSError, ValueError) as error:  # kept in memory for the next try
                logger.error("capture: drop counts of '%s' not written: %s", name, error)
                with self._lock:
                    for version, hours in counts.items():
                        for hour, rows in hours.items():
                            self._add_drop(name, version, hour, rows)

    def expire(self) -> None:
        """Delete hours of rows, and labels, older than CAPTURE_RETENTION_DAYS (every
        writer's: a replica that is gone leaves its folder behind)."""
        cutoff = datetime.now(UTC) - self.retention
        with self.files.exclusive():
            for writer in layout.writers(self.root):
                for name_dir in layout.real(writer.iterdir()):
                    if not name_dir.is_dir():
                        continue
                    for _version, hour, hour_dir in layout.hour_dirs(name_dir):
                        if layout.hour_start(hour) + timedelta(hours=1) <= cutoff:
                            shutil.rmtree(hour_dir, ignore_errors=True)
                    for labels in layout.label_files_of(name_dir):
                        written = int(labels.name.partition("-")[0]) / 1000
                        if datetime.fromtimestamp(written, UTC) <= cutoff:
                            labels.unlink(missing_ok=True)


def _add_counts(path: Path, counts: dict[str, dict[str, int]]) -> None:
    known = json.loads(path.read_bytes()) if path.is_file() else {}
    for version, hours in counts.items():
        into = known.setdefault(version, {})
        for hour, rows in hours.items():
            into[hour] = into.get(hour, 0) + rows
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, json.dumps(known).encode())


def _by_setting(group: list[Answered]) -> list[list[Answered]]:
    found: dict[tuple[int, frozenset[str]], list[Answered]] = {}
    for batch in group:
        key = (id(batch.model), batch.exclude)
        found.setdefault(key, []).append(batch)
    return list(found.values())
