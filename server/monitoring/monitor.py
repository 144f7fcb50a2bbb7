"""The monitor: what the rest of the server asks of monitoring (docs/monitoring.md).

It asks each name's setting of server.monitoring.settings (in memory: the hot path asks on
every `/predict`), hands sampled requests to the capture (server.monitoring.capture), takes
feedback, and computes reports, exports and erasures from the files, each in a thread and
under the files' lock (server.monitoring.locking): never on the event loop.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import InvalidInput, ModelNotFound, NoCapture
from server.ingest.features import Features
from server.monitoring import feedback, layout
from server.monitoring.capture import Capture
from server.monitoring.erasure import erase_key
from server.monitoring.feedback import Labels
from server.monitoring.report import version_report
from server.monitoring.rows import (
    Model,
    answered,
    exported,
    features_of,
    read_labels,
    read_rows,
    repeated_ids,
    rows_between,
    with_labels,
)
from server.monitoring.setting import CaptureSetting
from server.monitoring.settings import Settings
from server.store.files import ModelStore
from server.tables.keys import key_of

DEFAULT_WINDOW = timedelta(hours=24)
Window = tuple[datetime, datetime]


def window(since: datetime | None, until: datetime | None) -> Window:
    """The window a call means (naive times are UTC); 422 for an empty one."""
    try:
        end = _utc(until if until is not None else datetime.now(UTC))
        start = _utc(since) if since is not None else end - DEFAULT_WINDOW
    except OverflowError:  # before the year 1 or after 9999, once in UTC
        raise InvalidInput("the window's times must be between the years 1 and 9999") from None
    if start >= end:
        raise InvalidInput(f"the window is empty: since {start.isoformat()} is not before until")
    return start, end


def _utc(moment: datetime) -> datetime:
    """In UTC, to the microsecond as given (server.monitoring.rows compares)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Monitor:
    def __init__(self, store: ModelStore, capture: Capture) -> None:
        self.store, self.capture, self.root = store, capture, capture.root
        capture.keeps = store.exists
        self.settings = Settings(store)
        self.sampled = self.settings.sampled  # the hot path: the setting, if sampled
        self.reports: dict[tuple[str, int], dict[str, Any]] = {}  # the last, for /metrics
        # Each version's classes, read once (every feedback checks its labels against them).
        self._version_classes: dict[tuple[str, int], list[Any]] = {}
        self.on_change: Callable[[], None] = lambda: None  # the publisher's: replicas follow

    def start(self, names: list[str]) -> None:
        """Read the names' settings from the store (blocking), then start writing."""
        self.settings.start(names)
        self.capture.start()

    def close(self) -> None:
        self.capture.close()

    # -- the hot path -----------------------------------------------------------------------
    def offer(
        self, model: Model, version: int, name: str, features: Features, X: np.ndarray,
        answer: dict[str, Any], request_id: str, keys: list[str | None] | None,
        chosen: CaptureSetting,
    ) -> None:  # fmt: skip
        """Hand an answered request to the capture (it never waits)."""
        self.capture.offer(
            answered(name, version, request_id, time.time(), model, features, X,
                     answer["predictions"], answer.get("probabilities"), keys, chosen.excluded)
        )  # fmt: skip

    # -- settings -----------------------------------------------------------------------------
    def setting(self, name: str) -> CaptureSetting:
        return self.settings.get(name)

    def describe(self, name: str) -> dict[str, Any]:
        return self.settings.describe(name)

    async def change(
        self, name: str, capture: bool, sample_rate: float, exclude: list[str]
    ) -> CaptureSetting:
        changed = await self.settings.change(name, capture, sample_rate, exclude)
        self.on_change()
        return changed

    def published_setting(self, name: str) -> dict[str, Any] | None:
        return self.settings.published(name)

    def adopt(self, name: str, found: dict[str, Any] | None) -> None:
        self.settings.adopt(name, found)

    # -- feedback -------------------------------------------------------------------------
    async def feedback(self, name: str, labels: Labels) -> dict[str, Any]:
        if not self.store.exists(name):
            raise ModelNotFound(name)
        if not self.setting(name).ever:
            raise NoCapture(
                f"model '{name}' never had capture on: there are no rows to label "
                f"(PUT /models/{name}/monitoring turns it on)"
            )
        counts = await asyncio.to_thread(self._feedback, name, labels)
        await asyncio.to_thread(self._write_labels, name, feedback.labels_table(labels))
        return counts

    def _write_labels(self, name: str, table: pa.Table) -> None:
        with self.capture.files.shared():  # an erasure rewrites label files
            feedback.write_labels(self.capture.directory / name, table)

    def _feedback(self, name: str, labels: Labels) -> dict[str, Any]:
        """The labels checked against the classes of the version that answered (every
        version's, for keys: a key may reach rows of several), and the counts (blocking)."""
        waiting = self.capture.waiting(name)
        if labels.request_id is None:
            assert labels.keys is not None
            feedback.check_classes(labels, self._classes(name), name)
            with self.capture.files.shared():
                rows = feedback.key_rows(self.root, name, labels.keys)
            return feedback.by_keys(name, labels, rows, waiting)
        with self.capture.files.shared():
            rows = feedback.request_rows(self.root, name, labels.request_id)
        queued = [batch for batch in waiting if batch.request_id == labels.request_id]
        requests = feedback.requests_named(rows, queued)
        if requests > 1:
            raise NoCapture(
                f"request id {labels.request_id!r} names {requests} captured requests (an id "
                "sent twice, by a gateway or a retry): a label by it could be another row's. "
                "Label these rows by key (config.key), or give each request its own X-Request-Id"
            )
        versions = {*rows.column("_version").to_pylist(), *(batch.version for batch in queued)}
        feedback.check_classes(labels, self._classes(name, versions or None), name)
        return feedback.by_request(name, labels, rows, queued)

    def _classes(self, name: str, versions: set[int] | None = None) -> list[Any]:
        """Every class of the name's versions (all, or these), in order of appearance
        (blocking)."""
        found: dict[str, Any] = {}
        for version in self.store.versions(name) if versions is None else sorted(versions):
            for label in self._version_classes_of(name, version):
                found.setdefault(str(label), label)
        return list(found.values())

    def _version_classes_of(self, name: str, version: int) -> list[Any]:
        key = (name, version)
        if key not in self._version_classes:  # a number is never given twice: kept
            try:
                self._version_classes[key] = self.store.read_metadata(name, version)["classes"]
            except ModelNotFound:  # deleted since
                return []
        return self._version_classes[key]

    # -- reading ----------------------------------------------------------------------------
    async def report(self, name: str, span: Window) -> dict[str, Any]:
        if not self.store.exists(name):
            raise ModelNotFound(name)
        versions = await asyncio.to_thread(self._report, name, span)
        for described in versions:
            self.reports[(name, described["version"])] = described
        found = self.setting(name)
        return {
            "name": name,
            "capture": found.capture,
            "sample_rate": found.sample_rate,
            "window": {"since": iso(span[0]), "until": iso(span[1])},
            "refused": self.settings.refused.get(name),
            "versions": versions,
        }

    def _report(self, name: str, span: Window) -> list[dict[str, Any]]:
        rows, labels = self._read(name, span)
        dropped = self._dropped(name, span)
        repeated = repeated_ids(list(rows.values()))
        described = []
        for version in sorted({*rows, *dropped}):
            try:
                metadata = self.store.read_metadata(name, version)
            except ModelNotFound:  # deleted since: its rows stay until they expire
                continue
            found = rows.get(version)
            joined = with_labels(found, labels, repeated) if found is not None else None
            described.append(version_report(version, joined, metadata, dropped.get(version, 0)))
        return described

    def _dropped(self, name: str, span: Window) -> dict[int, int]:
        """Rows dropped in the window's hours: every writer's counts, and this server's
        not written yet."""
        counts: dict[int, int] = {}
        for by_version in self.capture.drop_counts(name):
            for version, hours in by_version.items():
                for hour, rows in hours.items():
                    start = layout.hour_start(hour)
                    if span[0] - timedelta(hours=1) < start < span[1]:
                        counts[int(version)] = counts.get(int(version), 0) + rows
        return counts

    async def labelled_rows(
        self, name: str, span: Window, trained: Window | None = None
    ) -> tuple[pa.Table, list[Any], int]:
        """The window's labelled captured rows (features only), their labels, and how many
        were left out as rows captured in `trained` (the window a version trained on: it is
        never scored on them); 409 if none are left."""
        if not self.store.exists(name):
            raise ModelNotFound(name)
        table = await asyncio.to_thread(self._joined, name, span, True)
        # A label no remaining version has (its version deleted) is left out.
        classes = {str(label): label for label in await asyncio.to_thread(self._classes, name)}
        table = table.filter(pc.is_in(table.column("_label"), pa.array(list(classes), pa.string())))
        left_out = 0
        if trained is not None and table.num_rows:
            inside = rows_between(table, *trained)
            left_out = int(pc.sum(inside).as_py() or 0)
            table = table.filter(pc.invert(inside))
        if not table.num_rows:
            also = f" ({left_out} left out: the version trained on them)" if left_out else ""
            raise NoCapture(
                f"model '{name}' has no labelled captured rows between {iso(span[0])} and "
                f"{iso(span[1])}{also}"
            )
        y = [classes[label] for label in table.column("_label").to_pylist()]
        return features_of(table), y, left_out

    def _read(self, name: str, span: Window) -> tuple[dict[int, pa.Table], pa.Table]:
        """The window's rows per version and every label, under the files' lock."""
        with self.capture.files.shared():
            return read_rows(self.root, name, *span), read_labels(self.root, name)

    def _joined(self, name: str, span: Window, only_labelled: bool) -> pa.Table:
        found, labels = self._read(name, span)
        tables = list(found.values())
        if not tables:
            return pa.table({"_label": pa.array([], pa.string())})
        rows = pa.concat_tables(tables, promote_options="permissive")
        rows = with_labels(rows, labels, repeated_ids(tables))
        if only_labelled:
            rows = rows.filter(pc.is_valid(rows.column("_label")))
        return rows

    async def export(self, name: str, span: Window, csv: bool) -> bytes:
        if not self.store.exists(name):
            raise ModelNotFound(name)
        return await asyncio.to_thread(self._export, name, span, csv)

    def _export(self, name: str, span: Window, csv: bool) -> bytes:
        return exported(self._joined(name, span, False), csv)

    # -- erasure ----------------------------------------------------------------------------
    async def forget(self, name: str) -> None:
        """Everything captured of a removed name, in every writer's folder."""
        await asyncio.to_thread(self.settings.forget, name)
        for key in [key for key in self.reports if key[0] == name]:
            del self.reports[key]
        self.capture.erase(name)
        await asyncio.to_thread(self._delete, name)

    def _delete(self, name: str) -> None:
        with self.capture.files.exclusive():
            for directory in layout.name_dirs(self.root, name):
                shutil.rmtree(directory, ignore_errors=True)

    async def erase_key(self, name: str, key: str) -> dict[str, Any]:
        if not self.store.exists(name):
            raise ModelNotFound(name)
        key = key_of(key) or key  # spelled as the rows spell it (server.tables.keys)
        await asyncio.to_thread(self.capture.flush)  # the key's queued rows too
        rows, labels = await asyncio.to_thread(self._erase_key, name, key)
        return {"name": name, "key": key, "rows": rows, "labels": labels}

    def _erase_key(self, name: str, key: str) -> tuple[int, int]:
        with self.capture.files.exclusive():
            return erase_key(self.root, name, key)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
