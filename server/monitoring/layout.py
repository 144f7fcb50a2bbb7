"""Where captured rows, labels and drop counts live under MONITORING_PATH.

Each server writes under a folder of its own (`primary`, or a replica's REPLICA_NAME), so
that no two processes ever write one file; the primary reads them all:

    MONITORING_PATH/
      primary/
        churn/
          rows/version=2/hour=2026-12-07T14/1796565600123-4f3a9c.parquet
          labels/1796565612000-0b2e41.parquet
          dropped.json          {"2": {"2026-12-07T14": 120}}
      replica-a/
        churn/rows/...

A file is written whole under a temporary name and renamed, so a reader sees it complete or
not at all. Hours are UTC. A symbolic link anywhere below MONITORING_PATH is never followed
(replicas write there too): what is read, rewritten or deleted is under it.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

WRITER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROWS, LABELS, DROPPED = "rows", "labels", "dropped.json"
HOUR_FORMAT = "%Y-%m-%dT%H"
PARQUET = ".parquet"


def hour_of(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(HOUR_FORMAT)


def hour_start(hour: str) -> datetime:
    return datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC)


def file_name() -> str:
    """Sortable by time, unique without coordination."""
    return f"{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}{PARQUET}"


def write_whole(path: Path, table: pa.Table) -> None:
    """A Parquet file written under a temporary name, then renamed: a reader sees it whole or
    not at all. Not fsynced: a crash may lose the last seconds of rows, as it loses the
    queue, and a sync per file would cost the server's own core."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        pq.write_table(table, temporary)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def real(paths: Iterator[Path]) -> list[Path]:
    """The paths that are no symbolic links, sorted."""
    return sorted(path for path in paths if not path.is_symlink())


def writers(root: Path) -> list[Path]:
    return [p for p in real(root.iterdir()) if p.is_dir()] if root.is_dir() else []


def name_dirs(root: Path, name: str) -> list[Path]:
    """The name's folder under every writer that has one."""
    return [
        found for writer in writers(root)
        if (found := writer / name).is_dir() and not found.is_symlink()
    ]  # fmt: skip


def hour_dirs(name_dir: Path) -> Iterator[tuple[int, str, Path]]:
    """(version, hour, folder) of one writer's captured hours of a name."""
    rows = name_dir / ROWS
    if not rows.is_dir() or rows.is_symlink():
        return
    for version_dir in real(rows.glob("version=*")):
        version = int(version_dir.name.partition("=")[2])
        for hour_dir in real(version_dir.glob("hour=*")):
            yield version, hour_dir.name.partition("=")[2], hour_dir


def row_files(
    root: Path, name: str, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[int, str, Path]]:
    """(version, hour, file) of every captured file of `name` whose hour meets the window."""
    for directory in name_dirs(root, name):
        for version, hour, hour_dir in hour_dirs(directory):
            start = hour_start(hour)
            if (since is not None and start + timedelta(hours=1) <= since) or (
                until is not None and start >= until
            ):
                continue
            for path in real(hour_dir.glob(f"*{PARQUET}")):
                yield version, hour, path


Stamp = tuple[int, int]  # a file's time of change (ns) and size: what kept results key on


def stamp(path: Path) -> Stamp:
    """A captured or label file's stamp; every change rewrites it whole under a new name,
    so a file with the same stamp holds the same rows (FileNotFoundError if it went)."""
    found = path.stat()
    return found.st_mtime_ns, found.st_size


def row_files_by_version(
    root: Path, name: str, since: datetime | None = None, until: datetime | None = None
) -> dict[int, list[Path]]:
    """`row_files`, per version."""
    files: dict[int, list[Path]] = {}
    for version, _hour, path in row_files(root, name, since, until):
        files.setdefault(version, []).append(path)
    return files


def label_files_of(name_dir: Path) -> list[Path]:
    """One writer's label files of a name."""
    labels = name_dir / LABELS
    return [] if labels.is_symlink() else real(labels.glob(f"*{PARQUET}"))


def label_files(root: Path, name: str) -> list[Path]:
    return [path for directory in name_dirs(root, name) for path in label_files_of(directory)]


def dropped_files(root: Path, name: str) -> list[Path]:
    return [p for d in name_dirs(root, name) if (p := d / DROPPED).is_file() and not p.is_symlink()]


def dropped_in(
    counts: Iterable[dict[str, dict[str, int]]], since: datetime, until: datetime
) -> dict[int, int]:
    """Per version, the rows dropped in the hours that meet [since, until), from drop counts
    (per version and hour) of several writers."""
    total: dict[int, int] = {}
    for by_version in counts:
        for version, hours in by_version.items():
            for hour, rows in hours.items():
                if since - timedelta(hours=1) < hour_start(hour) < until:
                    total[int(version)] = total.get(int(version), 0) + rows
    return total
