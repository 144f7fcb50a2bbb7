"""Monitoring (issue 39): what capture costs /predict, how fast the writer writes, and how
long a report over a million captured rows takes.

- Capture cost, on a real server under wrk: two copies of one RandomForest, one with capture
  on at sample rate 1.0 and one without, 1-row `/predict` alternated round by round at 1
  and 8 connections. Goal: at least 0.9x the rate, p99 within 1.5x. The rows the capturing
  copy wrote and dropped are counted after.
- The writer, in this process: batches as `/predict` hands them over (1-row requests, and
  100-row ones), turned into tables and written as Parquet by `Capture.flush`: rows per
  second.
- The report, in this process: a million captured rows of 12 columns (10 numbers, 2 text
  columns) in files of 10,000, a tenth of them labelled by request id, read and scored by
  the monitor's report (pyarrow, in one thread): the first report, a report with nothing
  new, and one after each new file with its labels (what a dashboard asks every 5 s).
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
from sklearn.datasets import make_classification

from bench import wrk
from bench.harness import Spread, show
from devtools.local_server import uvicorn_server
from devtools.stores import OneVersion
from server.ingest.features import RecordFeatures
from server.monitoring import feedback, layout
from server.monitoring.capture import Capture
from server.monitoring.monitor import Monitor
from server.monitoring.profile import reference_profile
from server.monitoring.rows import Answered, answered, captured_table

try:  # since summaries; before, the monitor's (a checkout of an older commit)
    from server.monitoring.windows import window
except ImportError:
    from server.monitoring.monitor import window  # type: ignore[attr-defined,no-redef]
from server.tables.columns import Column, Columns

ROUNDS, SECONDS = 5, 5
REPORT_ROWS, FILE_ROWS = 1_000_000, 10_000
_MODELS: dict[int, Any] = {}


def capture_cost(directory: Path) -> dict[str, Any]:
    if not wrk.installed():
        print("\nCapture cost: skipped, it needs wrk")
        return {"skipped": "wrk missing"}
    directory.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(n_samples=2000, n_features=10, random_state=0)
    fit = {"X": X.tolist(), "y": y.tolist()}
    hyper = {"n_estimators": 50, "max_depth": 8}
    body = httpx.Request("POST", "/", json={"X": X[:1].tolist(), "config": {"name": "x"}})
    found: dict[tuple[str, int], list[dict[str, float]]] = {}
    server = uvicorn_server(directory / "models", env={"ACCESS_LOG": "text"})
    with server as (url, _), httpx.Client(base_url=url, timeout=120) as client:
        for name in ("off", "on"):
            config = {"name": name, "model_type": "RandomForestClassifier",
                      "hyperparameters": hyper}  # fmt: skip
            assert client.post("/fit", json={**fit, "config": config}).status_code == 201
            assert client.post("/load", json={"config": {"name": name}}).status_code == 200
        assert client.put("/models/on/monitoring", json={"capture": True}).status_code == 200
        scripts = {
            name: wrk.post_script(
                directory / f"{name}.lua", body.content.decode().replace('"x"', f'"{name}"')
            )
            for name in ("off", "on")
        }
        for _ in range(ROUNDS):
            for connections in (1, 8):
                for name in ("off", "on"):
                    result = wrk.run(f"{url}/predict", scripts[name], connections, SECONDS)
                    found.setdefault((name, connections), []).append(result)
        sent = sum(r["requests"] for c in (1, 8) for r in found[("on", c)])
        deadline = time.monotonic() + 60  # until the writer has written (or dropped) them all
        while True:
            version = client.get("/models/on/monitoring").json()["versions"][0]
            if version["captured"] + version["dropped"] >= sent or time.monotonic() > deadline:
                break
    rows, measured = [], {}
    for connections in (1, 8):
        off, on = found[("off", connections)], found[("on", connections)]
        rates = [b["per_second"] / a["per_second"] for a, b in zip(off, on, strict=True)]
        tails = [b["p99_ms"] / a["p99_ms"] for a, b in zip(off, on, strict=True)]
        rate, tail = Spread.of(rates), Spread.of(tails)
        measured[connections] = {"rate_ratio": rate.__dict__, "p99_ratio": tail.__dict__}
        rows.append([
            connections,
            f"{statistics.median(a['per_second'] for a in off):.0f}",
            f"{statistics.median(b['per_second'] for b in on):.0f}",
            f"{rate.median:.2f} ({rate.low:.2f}-{rate.high:.2f})",
            f"{statistics.median(a['p99_ms'] for a in off):.2f}",
            f"{statistics.median(b['p99_ms'] for b in on):.2f}",
            f"{tail.median:.2f} ({tail.low:.2f}-{tail.high:.2f})",
        ])  # fmt: skip
    show(
        f"Capture cost: 1-row /predict of a RandomForest, capture on (rate 1.0) against off, "
        f"wrk, {ROUNDS} alternated rounds of {SECONDS} s (goal: rate >= 0.9x, p99 <= 1.5x)",
        ["connections", "off req/s", "on req/s", "rate on/off", "off p99 ms", "on p99 ms",
         "p99 on/off"],
        rows,
    )  # fmt: skip
    print(f"captured {version['captured']} rows, dropped {version['dropped']}")
    return {"cells": measured, "captured": version["captured"], "dropped": version["dropped"]}


def _columns() -> Columns:
    numbers = [Column(f"x{i}") for i in range(10)]
    texts = [Column("plan", "categorical", ("basic", "plus", "pro"), (1, 1, 1)),
             Column("state", "categorical", tuple(f"S{i:02d}" for i in range(50)),
                    tuple([1] * 50))]  # fmt: skip
    return Columns((*numbers, *texts), named=True)


def _answered(
    rows: int, rng: np.random.Generator, columns: Columns, request_id: str = "r"
) -> Answered:
    X = rng.normal(size=(rows, 12))
    X[:, 10] = rng.integers(0, 3, rows)
    X[:, 11] = rng.integers(0, 50, rows)
    records = [
        {**{f"x{i}": float(X[r, i]) for i in range(10)},
         "plan": columns.columns[10].levels[int(X[r, 10])],
         "state": columns.columns[11].levels[int(X[r, 11])]}
        for r in range(rows)
    ]  # fmt: skip
    probabilities = rng.dirichlet([1, 1], rows)
    predictions = ["yes" if p[1] > 0.5 else "no" for p in probabilities]
    return answered(
        "m", 1, request_id, time.time(), _model_of(columns), RecordFeatures(records), X,
        predictions, probabilities.tolist(), None, frozenset(),
    )  # fmt: skip


def _model_of(columns: Columns) -> _Model:
    """One model object per columns, as the server hands over one per loaded version."""
    return _MODELS.setdefault(id(columns), _Model(columns))


class _Model:
    """The columns of a model, and no probabilities to compute (the answers carry them)."""

    def __init__(self, columns: Columns) -> None:
        self.model_columns = columns

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        raise AssertionError("the bench's answers carry their probabilities")


def writer_rate(directory: Path) -> dict[str, Any]:
    columns, rng = _columns(), np.random.default_rng(0)
    found, rows = {}, []
    for per_request, requests in ((1, 20_000), (100, 500)):
        root = directory / f"writer-{per_request}"
        capture = Capture(root, "bench", 10**9, 3600, 30)
        answered = [_answered(per_request, rng, columns, f"r{i}") for i in range(requests)]
        started = time.perf_counter()
        for one in answered:
            capture.offer(one)
        offered = time.perf_counter() - started
        started = time.perf_counter()
        capture.flush()
        seconds = time.perf_counter() - started
        total = per_request * requests
        written = sum(pq.read_metadata(p).num_rows for *_, p in layout.row_files(root, "m"))
        assert written == total, (written, total)
        found[per_request] = {
            "rows": total,
            "seconds": seconds,
            "offer_us": offered / requests * 1e6,
        }
        rows.append([per_request, total, f"{seconds:.2f}", f"{total / seconds:,.0f}",
                     f"{offered / requests * 1e6:.1f}"])  # fmt: skip
        shutil.rmtree(root)
    show(
        "Capture writer: batches as /predict hands them over, tables built and written as "
        "Parquet by the writer thread (12 columns: 10 numbers, 2 text)",
        ["rows per request", "rows", "write s", "rows/s", "offer us per request"],
        rows,
    )
    return found


def report_time(directory: Path) -> dict[str, Any]:
    columns, rng = _columns(), np.random.default_rng(1)
    batch = _answered(FILE_ROWS, rng, columns)
    training = batch.X.copy()
    now = time.time()
    profile = reference_profile(training, columns, rng.integers(0, 2, FILE_ROWS), ["no", "yes"])
    metadata = {"classes": ["no", "yes"], "profile": profile, "features": columns.describe(),
                "validation": None}  # fmt: skip
    root = directory / "report"
    folder = (
        root / "bench" / "m" / layout.ROWS / "version=1" / f"hour={layout.hour_of(time.time())}"
    )
    folder.mkdir(parents=True)
    labels_dir = root / "bench" / "m"
    for part in range(REPORT_ROWS // FILE_ROWS):
        one = dataclasses.replace(batch, request_id=f"req-{part}", at=now)
        pq.write_table(captured_table([one]), folder / f"{part}.parquet")
        if part % 10 == 0:  # a tenth labelled, by request id
            labels = feedback.Labels(batch.predictions, request_id=f"req-{part}")
            feedback.write_labels(labels_dir, feedback.labels_table(labels))
    monitor = Monitor(OneVersion(metadata), Capture(root, "primary", 10, 3600, 30))  # type: ignore[arg-type]
    span = window(None, datetime.now(UTC) + timedelta(hours=1))
    parts = REPORT_ROWS // FILE_ROWS

    def timed() -> float:
        started = time.perf_counter()
        found.append(monitor._report("m", span)[0])
        return time.perf_counter() - started

    found: list[dict[str, Any]] = []
    cold = timed()
    unchanged = Spread.of([timed() for _ in range(3)])
    grown = []
    for part in range(parts, parts + 3):  # a new file and its label before each report
        one = dataclasses.replace(batch, request_id=f"req-{part}", at=time.time())
        pq.write_table(captured_table([one]), folder / f"{part}.parquet")
        labels = feedback.Labels(batch.predictions, request_id=f"req-{part}")
        feedback.write_labels(labels_dir, feedback.labels_table(labels))
        grown.append(timed())
    after = Spread.of(grown)
    version = found[0]
    show(
        f"Monitoring report over {REPORT_ROWS:,} captured rows (12 columns, files of "
        f"{FILE_ROWS:,}), a tenth labelled: the first report, one with nothing new (3 runs), "
        f"and one after each of 3 new files with their labels (s)",
        ["rows", "labelled", "first", "nothing new", "a new file and its labels"],
        [[version["captured"], version["labelled"], f"{cold:.3f}", unchanged.s(), after.s()]],
    )
    return {
        "rows": version["captured"],
        "labelled": version["labelled"],
        "first_s": cold,
        "unchanged_s": unchanged.__dict__,
        "grown_s": after.__dict__,
    }


def monitoring(directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        in_process = {"writer": writer_rate(Path(scratch)), "report": report_time(Path(scratch))}
    return {"capture": capture_cost(directory / "capture"), **in_process}
