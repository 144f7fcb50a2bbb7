"""Erasure of one key's captured rows and labels (a person who asks to be forgotten): every
file that holds one is rewritten without it, or deleted if nothing is left; labels given by
request id to an erased row go too. The caller holds the capture's lock, so no file is
written meanwhile."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from server.monitoring import layout


def erase_key(root: Path, name: str, key: str) -> tuple[int, int]:
    """(rows, labels) erased, in every writer's folder of `name` (blocking)."""
    rows_erased: set[tuple[str, int]] = set()
    rows = sum(
        _without_key(path, key, rows_erased) for _v, _h, path in layout.row_files(root, name)
    )
    labels = sum(_without_key(path, key, rows_erased) for path in layout.label_files(root, name))
    return rows, labels


def _without_key(path: Path, key: str, rows: set[tuple[str, int]]) -> int:
    """Rewrite a file without the rows of `key`, or labels of `rows` (deleted if none is
    left); how many went. Rows erased are added to `rows`."""
    table = pq.read_table(path)
    hit = pc.fill_null(pc.equal(table.column("_key"), key), False)
    if "_label" in table.column_names and rows:  # a labels file
        ids = table.column("_request_id").to_pylist()
        by_id = pa.array(
            [pair in rows for pair in zip(ids, table.column("_row").to_pylist(), strict=True)]
        )
        hit = pc.or_(hit, by_id)
    elif "_label" not in table.column_names:
        chosen = table.filter(hit)
        ids = chosen.column("_request_id").to_pylist()
        rows.update(zip(ids, chosen.column("_row").to_pylist(), strict=True))
    count = pc.sum(hit).as_py() or 0
    if not count:
        return 0
    kept = table.filter(pc.invert(hit))
    if kept.num_rows:
        temporary = path.with_name(f".{path.name}.erasing")
        pq.write_table(kept, temporary)
        temporary.replace(path)
    else:
        path.unlink()
    return int(count)
