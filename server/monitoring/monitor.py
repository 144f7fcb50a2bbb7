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
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import ModelNotFound, NoCapture
from server.ingest.features import Features
from server.monitoring import feedback, layout
from server.monitoring.capture import Capture
from server.monitoring.erasure import erase_key
from server.monitoring.feedback import Labels
from server.monitoring.named import NamedRows
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
    window_ms,
    with_labels,
)
from server.monitoring.setting import CaptureSetting
from server.monitoring.settings import Settings
from server.monitoring.summaries import Summaries
from server.monitoring.windows import Window, iso
from server.store.files import ModelStore
from server.tables.keys import key_of


class Monitor:
    def __init__(self, store: ModelStore, capture: Capture) -> None:
        self.store, self.capture, self.root = store, capture, capture.root
        capture.keeps = store.exists
        self.settings = Settings(store)
        self.sampled = self.settings.sampled  # the hot path: the setting, if sampled
        self.reports: dict[tuple[str, int], dict[str, Any]] = {}  # the last, for /metrics
        self._summaries: dict[str, Summaries] = {}  # per name: its files' summaries
        self._named: dict[str, NamedRows] = {}  # per name: its files' labelled rows
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
        if labels.request_id is None:
            assert labels.keys is not None
            feedback.check_classes(labels, self._classes(name), name)
            with self.capture.files.exclusive():  # the writer's files and queue as one
                waiting = self.capture.waiting(name)
                rows = feedback.key_rows(self.root, name, labels.keys)
            return feedback.by_keys(name, labels, rows, waiting)
        with self.capture.files.exclusive():
            waiting = self.capture.waiting(name)
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
        since, until = window_ms(span[0]), window_ms(span[1])
        summaries = self._summaries.setdefault(name, Summaries())
        # every writer's counts, and this server's not written yet
        dropped = layout.dropped_in(self.capture.drop_counts(name), *span)
        with self.capture.files.shared():
            paths = layout.row_files_by_version(self.root, name, *span)
            labels, named = self._named.setdefault(name, NamedRows()).read(
                layout.label_files(self.root, name), paths, since, until
            )
            repeated = repeated_ids(list(named.values()))
            described = []
            for version in sorted({*paths, *dropped}):
                try:
                    metadata = self.store.read_metadata(name, version)
                except ModelNotFound:  # deleted since: its rows stay until they expire
                    continue
                summary = summaries.of_window(paths.get(version, []), metadata, since, until)
                found = named.get(version)
                joined = with_labels(found, labels, repeated) if found is not None else None
                described.append(
                    version_report(version, summary, joined, metadata, dropped.get(version, 0))
                )
        summaries.let_go_of_all_but({str(path) for found in paths.values() for path in found})
        return described

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
        self._summaries.pop(name, None)
        self._named.pop(name, None)
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
