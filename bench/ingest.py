"""Ingest of a big /fit body: JSON with and without nulls, CSV and Parquet files.

The server's whole path up to the name check (it answers 409 for a name that exists, after
parsing and checking everything), against the in-process floor of the same bytes: orjson +
numpy for JSON, pyarrow reading the file for CSV and Parquet (with the server's options:
CSV on one thread).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sklearn.datasets import make_classification
from urllib3 import encode_multipart_formdata

from bench.harness import Spread, repeat, show, timed_post
from server.ingest.tables import CSV_READ

ROWS, COLUMNS, REPEATS = 100_000, 20, 5
NAME = "ingest"
CONFIG = {"name": NAME, "model_type": "LGBMClassifier"}  # takes missing values


def _table() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=ROWS, n_features=COLUMNS, random_state=0)
    return X, y


def _json(X: np.ndarray, y: np.ndarray, missing: bool) -> bytes:
    if not missing:
        return orjson.dumps({"X": X, "y": y, "config": CONFIG}, option=orjson.OPT_SERIALIZE_NUMPY)
    holes = np.random.default_rng(0).random(X.shape) < 0.2
    rows = [
        [None if hole else v for v, hole in zip(r, h, strict=True)]
        for r, h in zip(X.tolist(), holes, strict=True)
    ]
    return orjson.dumps({"X": rows, "y": y.tolist(), "config": CONFIG})


def _arrow(X: np.ndarray, y: np.ndarray) -> pa.Table:
    return pa.table({**{f"f{i}": X[:, i] for i in range(COLUMNS)}, "label": y})


def _csv(X: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    pa_csv.write_csv(_arrow(X, y), buffer)
    return buffer.getvalue()


def _parquet(X: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(_arrow(X, y), buffer)
    return buffer.getvalue()


def _json_floor(body: bytes) -> Callable[[], float]:
    def once() -> float:
        started = time.perf_counter()
        parsed = orjson.loads(body)
        np.array(parsed["X"], dtype=np.float64)  # None becomes NaN
        np.asarray(parsed["y"])
        return time.perf_counter() - started

    return once


def _file_floor(data: bytes, read: Callable[[io.BytesIO], Any]) -> Callable[[], float]:
    def once() -> float:
        started = time.perf_counter()
        read(io.BytesIO(data))
        return time.perf_counter() - started

    return once


async def ingest(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    X, y = _table()
    seed = {"X": X[:50].tolist(), "y": y[:50].tolist(), "config": CONFIG}
    await session.post(f"{url}/fit", json=seed)  # the name exists: every body below gets 409
    csv, parquet = _csv(X, y), _parquet(X, y)
    cases: list[tuple[str, bytes, str, Callable[[], float], str]] = []
    for missing in (False, True):
        body = _json(X, y, missing)
        label = f"JSON, {'20% null' if missing else 'no null'}"
        cases.append((label, body, "application/json", _json_floor(body), "orjson + numpy"))
    for label, data, read in (
        ("CSV", csv, lambda f: pa_csv.read_csv(f, read_options=CSV_READ)),
        ("Parquet", parquet, lambda f: pq.read_table(f, use_threads=False)),
    ):
        fields = {"file": ("train", data), "target": "label", "config": json.dumps(CONFIG)}
        body, content_type = encode_multipart_formdata(fields)
        cases.append((label, body, content_type, _file_floor(data, read), "pyarrow read"))

    rows, results = [], []
    for label, body, content_type, floor_once, floor_name in cases:
        floor = repeat(floor_once, REPEATS)
        served = Spread.of(
            [
                await timed_post(session, f"{url}/fit", body, 409, content_type)
                for _ in range(REPEATS)
            ]
        )
        megabytes = len(body) / 1e6
        ratio = served.median / floor.median
        rows.append(
            [
                label,
                f"{megabytes:.1f}",
                served.s(),
                f"{megabytes / served.median:.0f}",
                floor_name,
                floor.s(),
                f"{ratio:.2f}",
            ]
        )
        results.append(
            {
                "case": label,
                "megabytes": megabytes,
                "server_s": served.median,
                "floor_s": floor.median,
                "ratio": ratio,
            }
        )
    await session.post(f"{url}/remove", json={"config": {"name": NAME}})
    show(
        f"Ingest: a {ROWS // 1000}k x {COLUMNS} /fit body, parsed and checked (server answers 409 "
        f"after parsing; median, min-max of {REPEATS})",
        ["body", "MB", "server s", "MB/s", "floor", "floor s", "server / floor"],
        rows,
    )
    return results
