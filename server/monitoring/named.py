"""The captured rows that labels may name: those whose request id or key some label gives,
read whole from the files that hold any. Only the id and key columns of the other files are
read (by pyarrow, off the GIL), so a report's live scores cost what is labelled, not what is
captured.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from server.monitoring.rows import captured_between


def named_rows(
    paths: dict[int, list[Path]], labels: pa.Table, since: int, until: int
) -> dict[int, pa.Table]:
    """Per version, its rows of these files captured in [since, until) (milliseconds) that a
    label names by request id or by key."""
    ids = pc.unique(labels["_request_id"].filter(pc.is_null(labels["_key"]))).drop_null()
    keys = pc.unique(labels["_key"]).drop_null()
    found: dict[int, pa.Table] = {}
    if not len(ids) and not len(keys):
        return found
    for version, files in paths.items():
        parts = [part for path in files if (part := _named(path, ids, keys, since, until))]
        if parts:
            found[version] = pa.concat_tables(parts, promote_options="permissive")
    return found


def _named(path: Path, ids: pa.Array, keys: pa.Array, since: int, until: int) -> pa.Table | None:
    try:
        names = pq.read_schema(path).names
        columns = ["_time", "_request_id", *(["_key"] if "_key" in names else [])]
        index = pq.read_table(path, columns=columns)
    except FileNotFoundError:  # expired or erased since it was listed
        return None
    wanted = pc.is_in(index["_request_id"], value_set=ids)
    if "_key" in names and len(keys):
        wanted = pc.or_(wanted, pc.fill_null(pc.is_in(index["_key"], value_set=keys), False))
    wanted = pc.and_(wanted, captured_between(index["_time"], since, until))
    if not pc.any(wanted).as_py():
        return None
    return pq.read_table(path).filter(wanted)
