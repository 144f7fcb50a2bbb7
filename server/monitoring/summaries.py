"""Per-file summaries of captured rows: what a report adds up over its window (how many rows,
the predicted classes, each feature's rows per bin of the version's profile), computed once
per file and kept while the file is unchanged. A report then reads the files that are new
since the last one, or cut by the window's ends, and adds up the rest: its cost follows the
rows captured since, not every row of the window, and it holds the GIL for none of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from server.monitoring import layout
from server.monitoring.drift import feature_counts
from server.monitoring.rows import captured_between, features_of


@dataclass
class Summary:
    rows: int = 0
    predicted: Counter[str] = field(default_factory=Counter)
    drift: dict[str, np.ndarray] = field(default_factory=dict)  # rows per profile bin

    def add(self, other: Summary) -> None:
        self.rows += other.rows
        self.predicted.update(other.predicted)
        for name, counts in other.drift.items():
            kept = self.drift.get(name)
            self.drift[name] = counts.copy() if kept is None else kept + counts


@dataclass(frozen=True)
class _Kept:
    summary: Summary
    first: int  # the file's first and last capture times, milliseconds since the epoch
    last: int


def summarize(rows: pa.Table, metadata: dict[str, Any]) -> Summary:
    """The summary of one version's captured rows."""
    predicted = Counter(
        {
            item["values"]: item["counts"]
            for item in pc.value_counts(rows["_prediction"]).to_pylist()
        }
    )
    profile = metadata.get("profile")
    drift = {}
    if profile is not None and rows.num_rows:
        levels = {
            feature["name"]: feature["levels"]
            for feature in metadata.get("features", [])
            if feature.get("kind") == "categorical"
        }
        drift = feature_counts(features_of(rows), profile, levels)
    return Summary(rows.num_rows, predicted, drift)


class Summaries:
    """The kept summaries, by file, each with the file's time of change and size (a file
    erasure rewrote is summarized again); those of files gone are let go at each report."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[layout.Stamp, _Kept]] = {}  # path: (its stamp, summary)
        self._lock = threading.Lock()  # two reports at once (two pages) share the kept ones

    def of_window(
        self, paths: list[Path], metadata: dict[str, Any], since: int, until: int
    ) -> Summary:
        """The summary of one version's rows in these files captured in [since, until)
        (milliseconds)."""
        total = Summary()
        for path in paths:
            kept = self._of_file(path, metadata)
            if kept is None or kept.last < since or kept.first >= until:
                continue
            if since <= kept.first and kept.last < until:
                total.add(kept.summary)
            else:  # cut by an end of the window: these rows only, not kept
                rows = pq.read_table(path)
                inside = captured_between(rows["_time"], since, until)
                total.add(summarize(rows.filter(inside), metadata))
        return total

    def let_go_of_all_but(self, paths: set[str]) -> None:
        with self._lock:
            for path in [path for path in self._kept if path not in paths]:
                del self._kept[path]

    def _of_file(self, path: Path, metadata: dict[str, Any]) -> _Kept | None:
        try:
            key = layout.stamp(path)
        except FileNotFoundError:  # expired or erased since it was listed
            return None
        with self._lock:
            found = self._kept.get(str(path))
        kept = found[1] if found is not None and found[0] == key else None
        if kept is None:
            rows = pq.read_table(path)
            times = pc.cast(rows["_time"], pa.int64())
            first, last = (value.as_py() for value in pc.min_max(times).values())
            if first is None:  # no rows
                return None
            kept = _Kept(summarize(rows, metadata), int(first), int(last))
            with self._lock:
                self._kept[str(path)] = (key, kept)
        return kept
